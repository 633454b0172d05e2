"""The Flask application: Fission python-env's routes and its one-function-per-process rule.

Routes (as in fission/environments python/server.py):
- `POST /specialize`     version 1: load `main` from the fixed file `/userfunc/user`;
- `POST /v2/specialize`  JSON `{"filepath","functionName",...}`: load that entrypoint and keep the
                         request in `state.json`, so a restarted process specializes itself again;
- `GET /healthz`         200;
- everything else        the user function, called with no arguments; it reads `flask.request`
                         and returns any Flask response value.
"""

import json
import logging
import os
import threading

from flask import Flask, abort, request

from .loader import LoadError, load_function

USER_METHODS = ["GET", "POST", "PUT", "HEAD", "OPTIONS", "DELETE", "PATCH"]
NOT_GENERIC = "Not a generic container"
TEXT = {"Content-Type": "text/plain; charset=utf-8"}
V1_KEY = {"version": 1}

log = logging.getLogger("rivulet.runtime")


class FunctionSlot:
    """The single function this process serves. It is set once; a process never changes function."""

    def __init__(self):
        self.lock = threading.Lock()
        self.func = None
        # What was asked to load it, so that an identical repeat is recognised.
        self.key = None


def create_app(settings):
    app = Flask(__name__, static_folder=None)
    slot = FunctionSlot()
    app.extensions["rivulet_slot"] = slot

    def specialize(key, load):
        with slot.lock:
            if slot.func is not None:
                if slot.key == key:
                    return "", 200  # the same request again (e.g. a retried fetcher): nothing to do
                return NOT_GENERIC, 400, TEXT
            try:
                func = load()
            except LoadError as err:
                log.error("specialization failed: %s", err)
                return f"{err}\n", 500, TEXT
            slot.func, slot.key = func, key
        log.info("specialized: %s", key)
        return "", 200

    def specialize_v1():
        path = settings.pod_path(settings.v1_codepath)
        return specialize(V1_KEY, lambda: load_function(path, ""))

    def specialize_v2():
        body = request.get_json(force=True, silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("filepath"), str) or not body["filepath"]:
            return "invalid specialize request: expected a JSON object with a non-empty \"filepath\"\n", 400, TEXT
        answer = specialize(v2_key(body), lambda: load_v2(settings, body))
        if answer == ("", 200):
            save_state(settings, body)
        return answer

    def healthz():
        return "", 200

    def call_function(path=None):
        func = slot.func
        if func is None:
            log.error("userfunc is None")
            abort(500)
        return func()

    app.add_url_rule("/specialize", "load", specialize_v1, methods=["POST"])
    app.add_url_rule("/v2/specialize", "loadv2", specialize_v2, methods=["POST"])
    app.add_url_rule("/healthz", "healthz", healthz, methods=["GET"])
    app.add_url_rule("/", "userfunc_call", call_function, methods=USER_METHODS)
    app.add_url_rule("/<path:path>", "userfunc_call", call_function, methods=USER_METHODS)

    if settings.access_log:
        app.after_request(_log_access)

    restore_state(settings, slot)
    return app


def v2_key(body):
    return {"filepath": body["filepath"], "functionName": body.get("functionName") or ""}


def load_v2(settings, body):
    return load_function(settings.pod_path(body["filepath"]), body.get("functionName") or "")


def save_state(settings, body):
    try:
        with open(settings.state_file, "w", encoding="utf-8") as out:
            json.dump(body, out)
    except OSError as err:
        log.warning("cannot write %s (a restart will not reload the function): %s", settings.state_file, err)


def restore_state(settings, slot):
    """Fission's restart behaviour: a state.json left by a previous process is loaded again."""
    try:
        with open(settings.state_file, encoding="utf-8") as saved:
            body = json.load(saved)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as err:
        log.error("ignoring unreadable %s: %s", settings.state_file, err)
        return
    if not isinstance(body, dict) or not isinstance(body.get("filepath"), str):
        log.error("ignoring %s: not a specialize request", settings.state_file)
        return
    try:
        slot.func, slot.key = load_v2(settings, body), v2_key(body)
        log.info("reloaded function from %s: %s", settings.state_file, slot.key)
    except LoadError as err:
        log.error("cannot reload function from %s: %s", settings.state_file, err)


def forget_state(settings):
    """On SIGTERM/SIGINT Fission removes state.json, so a stopped pod does not come back specialized."""
    try:
        os.remove(settings.state_file)
    except FileNotFoundError:
        pass
    except OSError as err:
        log.warning("cannot remove %s: %s", settings.state_file, err)


def _log_access(response):
    log.info('"%s %s" %s', request.method, request.full_path.rstrip("?"), response.status_code)
    return response
