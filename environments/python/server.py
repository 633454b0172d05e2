#!/usr/bin/env python3
"""Entry point of the Rivulet Python runtime (`python3 server.py`, like Fission's python-env).

Serves the Flask app of `rivulet_runtime.app` with cheroot, a threaded WSGI server, on
$RIVULET_BIND_ADDRESS:$RIVULET_RUNTIME_PORT (default 0.0.0.0:8888). Port 0 picks a free port;
the line `listening on http://HOST:PORT` on stdout tells which. SIGTERM/SIGINT stop it promptly.
"""

import logging
import signal
import sys

from cheroot import wsgi

from rivulet_runtime.app import create_app, forget_state
from rivulet_runtime.settings import Settings

# Time in-flight requests get to finish after SIGTERM before the process exits anyway.
SHUTDOWN_GRACE_SECONDS = 2


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
        server_name="rivulet-python-runtime",
    )

    def stop(signum, _frame):
        forget_state(settings)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    server.prepare()
    host, port = server.bind_addr[:2]
    print(f"rivulet python runtime listening on http://{host}:{port}", flush=True)
    try:
        server.serve()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
