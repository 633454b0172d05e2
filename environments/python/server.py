#!/usr/bin/env python3
"""Entry point of the Rivulet Python runtime (`python3 server.py`, like Fission's python-env).

Serves the Flask app of `rivulet_runtime.app` with Granian, a WSGI server whose HTTP layer is
native code (Fission's python-env uses bjoern for the same reason: a pure-Python server spends
more time parsing requests than a small function spends answering them), on
$RIVULET_BIND_ADDRESS:$RIVULET_RUNTIME_PORT (default 0.0.0.0:8888). Port 0 picks a free port; the
line `listening on http://HOST:PORT` on stdout says which, once connections are accepted.

Granian runs the app in one worker process forked from this one. The worker dies with this
process, a crashed worker ends this process (exit 1, so the pod is replaced like any crashed
runtime), and SIGTERM/SIGINT stop both within SHUTDOWN_GRACE_SECONDS.
"""

import ctypes
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from rivulet_runtime.app import create_app, forget_state
from rivulet_runtime.settings import Settings

# Time in-flight requests get to finish after SIGTERM before the worker is killed anyway.
SHUTDOWN_GRACE_SECONDS = 2
# An idle keep-alive connection is closed after this long (Granian's header read timeout, 30 s by
# default, also runs between requests). Longer than a proxy keeps idle connections (the router:
# 30 s, nginx: 60 s), so the proxy closes them and never reuses one the runtime is closing.
IDLE_TIMEOUT_SECONDS = 120
# Pending connections the kernel queues before accept (capped at net.core.somaxconn): a proxy
# opening many connections at once must not see SYNs dropped.
ACCEPT_BACKLOG = 1024
# How often, and how long, the start-up announcement checks that the port accepts connections.
ANNOUNCE_POLL_SECONDS = 0.01
ANNOUNCE_DEADLINE_SECONDS = 60
# prctl(2) option: the signal the calling process gets when its parent exits.
PR_SET_PDEATHSIG = 1


def main():
    settings = Settings.from_env()
    logging.basicConfig(
        stream=sys.stdout,
        level=getattr(logging, settings.log_level, logging.INFO),
        format="%(asctime)s - %(levelname)s - %(message)s",
    )
    port = settings.port or free_port(settings.bind_address)
    # Granian forks its worker with the platform's default start method unless that is
    # forkserver (Python 3.14's default), which it replaces with spawn; spawn would have to
    # pickle load_app, a closure. Fork is what this single-threaded parent can safely use.
    multiprocessing.set_start_method("fork", force=True)
    server = Server(
        "rivulet_runtime.app",  # informational: the app comes from load_app below
        address=settings.bind_address,
        port=port,
        interface=Interfaces.WSGI,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(header_read_timeout=IDLE_TIMEOUT_SECONDS * 1000),
        workers=1,
        blocking_threads=settings.threads,
        backlog=ACCEPT_BACKLOG,
        log_level=granian_log_level(settings.log_level),
        workers_kill_timeout=SHUTDOWN_GRACE_SECONDS,
    )
    parent = os.getpid()

    def load_app():
        # Runs in the worker process, before it serves. The announcing thread starts here, not
        # before the fork: a thread running in the parent while it forks can leave the worker
        # holding a lock nobody releases (the worker then never answers).
        die_with_parent(parent)
        app = create_app(settings)
        threading.Thread(target=announce_when_listening, args=(settings.bind_address, port), daemon=True).start()
        return app

    exit_code = 0
    try:
        server.serve(target_loader=load_app, wrap_loader=False)
    except SystemExit as stopped:
        exit_code = stopped.code or 0
    except Exception:  # noqa: BLE001 - the process is ending; say why before it does
        logging.exception("runtime server failed")
        exit_code = 1
    # Fission removes state.json when the pod is told to stop, not when the runtime crashed, so
    # a restarted container comes back specialized only after a crash. `interrupt_signal` is
    # Granian's own flag for "stopped by SIGTERM/SIGINT" (pinned version; test_server checks
    # both outcomes).
    if server.interrupt_signal:
        forget_state(settings)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(exit_code)


def free_port(address):
    """A port nothing listens on now; port 0 is for tests, which read the announced port."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return probe.getsockname()[1]


def announce_when_listening(address, port):
    """Prints the `listening on` line once a connection to the port succeeds."""
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(address, address)
    deadline = time.monotonic() + ANNOUNCE_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        try:
            socket.create_connection((target, port), timeout=1).close()
        except OSError:
            time.sleep(ANNOUNCE_POLL_SECONDS)
            continue
        print(f"rivulet python runtime listening on http://{address}:{port}", flush=True)
        return
    logging.error("the runtime does not accept connections on %s:%s after %ss", target, port, ANNOUNCE_DEADLINE_SECONDS)


def die_with_parent(parent):
    """Makes the worker exit with this process even when it is killed with SIGKILL."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            logging.warning("prctl(PR_SET_PDEATHSIG) failed: %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


def granian_log_level(level):
    try:
        return LogLevels(level.lower())
    except ValueError:
        return LogLevels.info


if __name__ == "__main__":
    main()
