"""Reads a path parameter and the request body, the way Fission functions do.

Meant for an HTTPTrigger with `relativeurl: /greet/{name}` (GET or POST): Fission's router
passes each `{var}` of the URL template as the header `X-Fission-Params-<Var>`.

    curl http://127.0.0.1:8888/greet/Ada                  -> Hello, Ada!
    curl -d 'nice to meet you' http://127.0.0.1:8888/greet/Ada
                                                          -> Hello, Ada! You said: nice to meet you
"""

from flask import request


def main():
    name = request.headers.get("X-Fission-Params-Name", "stranger")
    message = request.get_data(as_text=True)
    if message:
        return f"Hello, {name}! You said: {message}\n"
    return f"Hello, {name}!\n"
