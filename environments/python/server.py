#!/usr/bin/env python3
"""Entry point of the Rivulet Python runtime (`python3 server.py`, like Fission's python-env).

Serves the Flask app of `rivulet_runtime.app` with cheroot, a threaded WSGI server, on
$RIVULET_BIND_ADDRESS:$RIVULET_RUNTIME_PORT (default 0.0.0.0:8888). Port 0 picks a free port;
the line `listening on http://HOST:PORT` on stdout tells which. SIGTERM/SIGINT stop it promptly.
"""

import logging
import os
import signal
import sys
import threading

from cheroot import wsgi

from rivulet_runtime.app import create_app, forget_state
from rivulet_runtime.settings import Settings

# Time in-flight requests get to finish after SIGTERM before the process exits anyway.
SHUTDOWN_GRACE_SECONDS = 2
# Idle keep-alive connections stay open longer than a proxy's pool usually keeps them, so the
# proxy, not the runtime, closes them and never reuses a connection being closed.
IDLE_TIMEOUT_SECONDS = 60
# Pending connections the kernel queues before accept (cheroot's default of 5 drops SYNs as soon
# as a proxy opens a few connections at once, and each drop costs the client a 1 s retransmit).
# The kernel caps it at net.core.somaxconn.
ACCEPT_BACKLOG = 1024


def main():
    settings = Settings.from_env()
    logging.basicConfig(
        stream=sys.stdout,
        level=getattr(logging, settings.log_level, logging.INFO),
        format="%(asctime)s - %(levelname)s - %(message)s",
    )
    app = create_app(settings)
    server = wsgi.Server(
        (settings.bind_address, settings.port),
        app,
        numthreads=settings.threads,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        timeout=IDLE_TIMEOUT_SECONDS,
        server_name="rivulet-python-runtime",
        request_queue_size=ACCEPT_BACKLOG,
    )
    # cheroot answers `Connection: close` once 10 connections are open, so a proxy keeping more
    # than 10 keep-alive connections reconnects on nearly every request (and overflows the
    # backlog). Idle connections cost no thread here, so keep them all; IDLE_TIMEOUT_SECONDS
    # still closes the idle ones.
    server.keep_alive_conn_limit = None

    def stop(signum, _frame):
        # Once is enough: a second signal must not interrupt the shutdown below.
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        forget_state(settings)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    server.prepare()
    host, port = server.bind_addr[:2]
    print(f"rivulet python runtime listening on http://{host}:{port}", flush=True)
    exit_code = 1
    try:
        server.serve()
    except SystemExit as stopped:
        exit_code = stopped.code or 0
    except Exception:  # noqa: BLE001 - the process is ending; say why before it does
        logging.exception("runtime server failed")
    finally:
        # In-flight requests get SHUTDOWN_GRACE_SECONDS; cheroot's stop() would then still wait
        # for a function that never returns, so it runs aside and the process exits regardless.
        stopper = threading.Thread(target=server.stop, daemon=True)
        stopper.start()
        stopper.join(SHUTDOWN_GRACE_SECONDS + 1)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(exit_code)


if __name__ == "__main__":
    main()
