"""The real server process over HTTP on loopback: what the fetcher and the router talk to."""

import http.client
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
import unittest

from tests.support import ENV_DIR, PodTestCase

START_DEADLINE = 20.0
STOP_DEADLINE = 10.0

ECHO_PARAMS = """
    from flask import request

    def main():
        return {
            "path": request.full_path,
            "user_id": request.headers.get("X-Fission-Params-User_id"),
            "body": request.get_data(as_text=True),
        }, 202, {"X-From": "function"}
"""


class ServerProcess:
    """`python3 server.py` on a free loopback port, found from its `listening on` line."""

    def __init__(self, root):
        env = dict(os.environ)
        env.update(
            {
                "RIVULET_BIND_ADDRESS": "127.0.0.1",
                "RIVULET_RUNTIME_PORT": "0",
                "RIVULET_ROOT": root,
                "PYTHONUNBUFFERED": "1",
            }
        )
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(ENV_DIR, "server.py")],
            cwd=ENV_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.port = self._wait_for_port()

    def _pump(self):
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for_port(self):
        deadline = time.monotonic() + START_DEADLINE
        seen = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=deadline - time.monotonic())
            except queue.Empty:
                break
            if line is None:
                break
            seen.append(line)
            found = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if found:
                return int(found.group(1))
        self.stop()
        raise AssertionError(f"runtime did not start; output: {''.join(seen)}")

    def request(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            response = conn.getresponse()
            # Header names are case-insensitive (the server sends them in lower case).
            return response.status, response.headers, response.read().decode()
        finally:
            conn.close()

    def children(self):
        """Process ids whose parent is the server, from each process's /proc/PID/stat (Linux)."""
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", encoding="ascii", errors="replace") as stat:
                    # pid (comm) state ppid ...: comm may hold spaces, so split after its ')'.
                    ppid = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue  # gone meanwhile
            if ppid == self.proc.pid:
                found.append(int(entry))
        return found

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=STOP_DEADLINE)
        self.proc.stdout.close()


class ServerProcessTest(PodTestCase):
    def setUp(self):
        super().setUp()
        os.makedirs(os.path.join(self.root, "userfunc"))
        self.server = ServerProcess(self.root)
        self.addCleanup(self.server.stop)

    def specialize(self, function_name):
        body = json.dumps({"filepath": "/userfunc/deployarchive", "functionName": function_name, "envVersion": 2})
        return self.server.request("POST", "/v2/specialize", body, {"Content-Type": "application/json"})

    def test_hello_world_lifecycle(self):
        self.assertEqual(self.server.request("GET", "/healthz")[0], 200)
        self.assertEqual(self.server.request("GET", "/")[0], 500)  # not specialized yet

        self.copy_example("hello.py", "/userfunc/deployarchive/hello.py")
        self.assertEqual(self.specialize("hello.main")[0], 200)
        status, _, body = self.server.request("GET", "/hello")
        self.assertEqual((status, body), (200, "Hello, World!\n"))
        self.assertTrue(os.path.exists(os.path.join(self.root, "userfunc", "state.json")))

        started = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        self.server.proc.wait(timeout=STOP_DEADLINE)
        self.assertLess(time.monotonic() - started, STOP_DEADLINE)
        self.assertFalse(os.path.exists(os.path.join(self.root, "userfunc", "state.json")))

    def test_sigterm_does_not_wait_for_a_stuck_function(self):
        marker = os.path.join(self.root, "started")
        self.write(
            "/userfunc/deployarchive/slow.py",
            f"""
            import time

            def main():
                open({marker!r}, "w").close()
                time.sleep(60)
                return "too late"
            """,
        )
        self.assertEqual(self.specialize("slow.main")[0], 200)

        def call():
            try:
                self.server.request("GET", "/")
            except OSError:
                pass  # the server goes away under this request: expected

        threading.Thread(target=call, daemon=True).start()
        deadline = time.monotonic() + START_DEADLINE
        while not os.path.exists(marker):
            self.assertLess(time.monotonic(), deadline, "the function never started")
            time.sleep(0.01)

        started = time.monotonic()
        self.server.proc.send_signal(signal.SIGTERM)
        self.assertEqual(self.server.proc.wait(timeout=STOP_DEADLINE), 0)
        self.assertLess(time.monotonic() - started, STOP_DEADLINE)

    def test_a_crashing_function_ends_the_process_and_keeps_the_state(self):
        # The pod is then replaced like any crashed runtime; state.json is only removed on a
        # stop signal, so a restarted container would come back specialized (Fission's rule).
        self.write(
            "/userfunc/deployarchive/crash.py",
            """
            import os

            def main():
                os._exit(3)
            """,
        )
        self.assertEqual(self.specialize("crash.main")[0], 200)
        with self.assertRaises(OSError):
            self.server.request("GET", "/")
        self.assertEqual(self.server.proc.wait(timeout=STOP_DEADLINE), 1)
        self.assertTrue(os.path.exists(os.path.join(self.root, "userfunc", "state.json")))

    def test_the_worker_dies_with_a_killed_server(self):
        workers = self.server.children()
        self.assertEqual(len(workers), 1, "granian runs the app in one worker process")
        self.server.proc.kill()
        self.server.proc.wait(timeout=STOP_DEADLINE)
        deadline = time.monotonic() + STOP_DEADLINE
        while os.path.exists(f"/proc/{workers[0]}"):
            self.assertLess(time.monotonic(), deadline, "the worker outlived its killed parent")
            time.sleep(0.01)

    def test_headers_body_status_over_http(self):
        self.write("/userfunc/deployarchive/echo.py", ECHO_PARAMS)
        self.assertEqual(self.specialize("echo.main")[0], 200)
        status, headers, body = self.server.request(
            "POST", "/users/42?verbose=1", body="hi there", headers={"X-Fission-Params-User_id": "42"}
        )
        self.assertEqual(status, 202)
        self.assertEqual(headers.get("X-From"), "function")
        self.assertEqual(json.loads(body), {"path": "/users/42?verbose=1", "user_id": "42", "body": "hi there"})

    def test_chunked_request_body(self):
        self.write("/userfunc/deployarchive/echo.py", ECHO_PARAMS)
        self.assertEqual(self.specialize("echo.main")[0], 200)
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("POST", "/", body=iter([b"first ", b"second"]), encode_chunked=True)
            response = conn.getresponse()
            self.assertEqual(json.loads(response.read())["body"], "first second")
        finally:
            conn.close()

    def test_many_keep_alive_connections_stay_open(self):
        # A proxy in front keeps one connection per concurrent request; the runtime must not
        # close them after each response (cheroot closes all but 10 by default).
        self.copy_example("hello.py", "/userfunc/deployarchive/hello.py")
        self.assertEqual(self.specialize("hello.main")[0], 200)
        connections = [http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10) for _ in range(40)]
        try:
            for conn in connections:
                conn.request("GET", "/")
            closing = 0
            for conn in connections:
                response = conn.getresponse()
                self.assertEqual((response.status, response.read()), (200, b"Hello, World!\n"))
                closing += response.getheader("Connection", "").lower() == "close"
            self.assertEqual(closing, 0, "connections the runtime announced it would close")
        finally:
            for conn in connections:
                conn.close()

    def test_specialize_error_text_over_http(self):
        self.write("/userfunc/deployarchive/broken.py", "def main(:\n")
        status, _, body = self.specialize("broken.main")
        self.assertEqual(status, 500)
        self.assertIn("SyntaxError", body)


if __name__ == "__main__":
    unittest.main()
