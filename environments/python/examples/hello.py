# The hello world of Fission's python-env, unchanged: GET it and it answers with a greeting.
def main():
    return "Hello, World!\n"
