# Hello world for the Python environment, written exactly as for Fission's python-env:
# GET it and it answers "Hello, World!".
def main():
    return "Hello, World!\n"
