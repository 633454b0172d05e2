"""The runtime contract through Flask's test client: specialization, invocation, errors."""

import json
import os
import unittest

from rivulet_runtime.app import create_app, forget_state
from rivulet_runtime.settings import Settings
from tests.support import PodTestCase

ECHO = """
    from flask import request

    def main():
        return {
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(),
            "body": request.get_data(as_text=True),
            "greeting": request.headers.get("X-Greeting"),
            "param": request.headers.get("X-Fission-Params-User_id"),
        }
"""


class RuntimeTestCase(PodTestCase):
    def setUp(self):
        super().setUp()
        self.settings = Settings(root=self.root)
        self.app = create_app(self.settings)
        self.client = self.app.test_client()

    def specialize(self, filepath, function_name):
        return self.client.post(
            "/v2/specialize",
            json={
                "filepath": filepath,
                "functionName": function_name,
                "url": "",
                "FunctionMetadata": {"name": "f", "namespace": "default"},
                "envVersion": 2,
            },
        )

    def assert_specialized(self, filepath, function_name):
        response = self.specialize(filepath, function_name)
        self.assertEqual(response.status_code, 200, response.get_data(as_text=True))


class SpecializeTest(RuntimeTestCase):
    def test_directory_with_module_and_function(self):
        self.write("/userfunc/deployarchive/hello.py", "def greet():\n    return 'from hello.greet'\n")
        self.assert_specialized("/userfunc/deployarchive", "hello.greet")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "from hello.greet")

    def test_directory_defaults_to_main_main(self):
        self.write("/userfunc/deployarchive/main.py", "def main():\n    return 'main.main'\n")
        self.assert_specialized("/userfunc/deployarchive", "")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "main.main")

    def test_directory_with_bare_function_name_uses_module_main(self):
        self.write("/userfunc/deployarchive/main.py", "def other():\n    return 'main.other'\n")
        self.assert_specialized("/userfunc/deployarchive", "other")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "main.other")

    def test_directory_with_package_path(self):
        self.write("/userfunc/deployarchive/pkg/__init__.py", "")
        self.write("/userfunc/deployarchive/pkg/handlers.py", "from .util import word\n\ndef handle():\n    return word()\n")
        self.write("/userfunc/deployarchive/pkg/util.py", "def word():\n    return 'nested'\n")
        self.assert_specialized("/userfunc/deployarchive", "pkg.handlers.handle")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "nested")

    def test_file_defaults_to_main(self):
        self.write("/userfunc/deployarchive", "def main():\n    return 'file main'\n")
        self.assert_specialized("/userfunc/deployarchive", "")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "file main")

    def test_file_ignores_the_module_part(self):
        self.write("/userfunc/deployarchive", "def hi():\n    return 'file hi'\n")
        self.assert_specialized("/userfunc/deployarchive", "whatever.hi")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "file hi")

    def test_version_1_loads_userfunc_user(self):
        self.write("/userfunc/user", "def main():\n    return 'v1'\n")
        response = self.client.post("/specialize", data=b"", content_type="text/plain")
        self.assertEqual(response.status_code, 200, response.get_data(as_text=True))
        self.assertEqual(self.client.get("/").get_data(as_text=True), "v1")

    def test_paths_are_used_as_given_without_a_root(self):
        self.app = create_app(Settings(root=None))
        self.client = self.app.test_client()
        real = self.write("/code/main.py", "def main():\n    return 'absolute'\n")
        self.assert_specialized(os.path.dirname(real), "")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "absolute")

    def test_the_root_is_where_in_pod_paths_live(self):
        # An in-pod path that also exists on the real filesystem must still be read under the root.
        self.write("/tmp/main.py", "def main():\n    return 'under the root'\n")
        self.assert_specialized("/tmp", "")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "under the root")


class InvocationTest(RuntimeTestCase):
    def setUp(self):
        super().setUp()
        self.write("/userfunc/deployarchive/echo.py", ECHO)
        self.assert_specialized("/userfunc/deployarchive", "echo.main")

    def test_get_sees_path_query_and_headers(self):
        response = self.client.get(
            "/some/path?a=1&b=two", headers={"X-Greeting": "hi", "X-Fission-Params-User_id": "42"}
        )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.get_json(),
            {
                "method": "GET",
                "path": "/some/path",
                "query": {"a": "1", "b": "two"},
                "body": "",
                "greeting": "hi",
                "param": "42",
            },
        )

    def test_post_body_reaches_the_function(self):
        response = self.client.post("/", data="payload", headers={"X-Greeting": "yo"})
        self.assertEqual(response.get_json()["body"], "payload")
        self.assertEqual(response.get_json()["method"], "POST")

    def test_every_method_reaches_the_function(self):
        for method in ("PUT", "DELETE", "PATCH", "OPTIONS"):
            response = self.client.open("/x", method=method)
            self.assertEqual(response.get_json()["method"], method, method)
        self.assertEqual(self.client.head("/x").status_code, 200)

    def test_runtime_paths_with_other_methods_reach_the_function(self):
        self.assertEqual(self.client.get("/specialize").get_json()["path"], "/specialize")
        self.assertEqual(self.client.post("/healthz").get_json()["path"], "/healthz")

    def test_healthz(self):
        response = self.client.get("/healthz")
        self.assertEqual((response.status_code, response.get_data()), (200, b""))


class AccessLogTest(RuntimeTestCase):
    def test_no_request_is_logged_unless_asked(self):
        self.write("/userfunc/deployarchive/main.py", "def main():\n    return 'ok'\n")
        self.assert_specialized("/userfunc/deployarchive", "")
        with self.assertNoLogs("rivulet.runtime", "INFO"):
            self.client.get("/quiet")

        # Same pod root: this app reloads the function from state.json.
        chatty = create_app(Settings(root=self.root, access_log=True)).test_client()
        with self.assertLogs("rivulet.runtime", "INFO") as logs:
            chatty.get("/chatty?x=1")
        self.assertIn('"GET /chatty?x=1" 200', "\n".join(logs.output))


class ResponseValueTest(RuntimeTestCase):
    def serve(self, source):
        self.write("/userfunc/deployarchive/fn.py", source)
        self.assert_specialized("/userfunc/deployarchive", "fn.main")
        return self.client.get("/")

    def test_tuple_with_status_and_headers(self):
        response = self.serve("def main():\n    return 'created', 201, {'X-Answer': '42'}\n")
        self.assertEqual(response.status_code, 201)
        self.assertEqual(response.headers["X-Answer"], "42")
        self.assertEqual(response.get_data(as_text=True), "created")

    def test_bytes(self):
        response = self.serve("def main():\n    return b'\\x00\\x01'\n")
        self.assertEqual(response.get_data(), b"\x00\x01")

    def test_flask_response_object(self):
        response = self.serve(
            "from flask import Response\n\ndef main():\n    return Response('teapot', status=418, mimetype='text/x-tea')\n"
        )
        self.assertEqual((response.status_code, response.mimetype), (418, "text/x-tea"))

    def test_exception_in_the_function_is_a_500(self):
        self.app.logger.disabled = True
        response = self.serve("def main():\n    raise RuntimeError('boom')\n")
        self.assertEqual(response.status_code, 500)


class SpecializeErrorTest(RuntimeTestCase):
    def assert_fails(self, response, *fragments):
        body = response.get_data(as_text=True)
        self.assertEqual(response.status_code, 500, body)
        for fragment in fragments:
            self.assertIn(fragment, body)
        # A failed specialization leaves the runtime generic.
        self.assertEqual(self.client.get("/").status_code, 500)

    def test_syntax_error(self):
        self.write("/userfunc/deployarchive/broken.py", "def main(:\n    return 1\n")
        self.assert_fails(self.specialize("/userfunc/deployarchive", "broken.main"), "SyntaxError", "broken.py", "line 1")

    def test_error_while_importing_names_the_line(self):
        self.write("/userfunc/deployarchive/angry.py", "x = 1\nraise ValueError('no config')\n")
        self.assert_fails(
            self.specialize("/userfunc/deployarchive", "angry.main"), "ValueError: no config", "angry.py, line 2"
        )

    def test_missing_entrypoint(self):
        self.write("/userfunc/deployarchive/hello.py", "def main():\n    return 1\n")
        self.assert_fails(self.specialize("/userfunc/deployarchive", "hello.nope"), "entrypoint 'nope' not found")

    def test_entrypoint_that_is_not_callable(self):
        self.write("/userfunc/deployarchive/hello.py", "main = 3\n")
        self.assert_fails(self.specialize("/userfunc/deployarchive", "hello.main"), "not callable")

    def test_missing_module(self):
        self.write("/userfunc/deployarchive/hello.py", "def main():\n    return 1\n")
        self.assert_fails(self.specialize("/userfunc/deployarchive", "absent.main"), "No module named 'absent'")

    def test_missing_file(self):
        self.assert_fails(self.specialize("/userfunc/nothing-here", ""), "does not exist")

    def test_missing_v1_file(self):
        self.assert_fails(self.client.post("/specialize"), "does not exist")

    def test_called_before_specialization(self):
        response = self.client.get("/")
        self.assertEqual(response.status_code, 500)
        self.assertIn("Internal Server Error", response.get_data(as_text=True))

    def test_malformed_request(self):
        response = self.client.post("/v2/specialize", data="not json", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.assertIn("filepath", response.get_data(as_text=True))

    def test_specialized_twice(self):
        self.write("/userfunc/deployarchive/a.py", "def main():\n    return 'a'\n")
        self.write("/userfunc/deployarchive/b.py", "def main():\n    return 'b'\n")
        self.assert_specialized("/userfunc/deployarchive", "a.main")
        second = self.specialize("/userfunc/deployarchive", "b.main")
        self.assertEqual((second.status_code, second.get_data(as_text=True)), (400, "Not a generic container"))
        self.assertEqual(self.client.post("/specialize").status_code, 400)
        self.assertEqual(self.client.get("/").get_data(as_text=True), "a")

    def test_the_same_request_twice_is_not_an_error(self):
        self.write("/userfunc/deployarchive/a.py", "def main():\n    return 'a'\n")
        self.assert_specialized("/userfunc/deployarchive", "a.main")
        self.assert_specialized("/userfunc/deployarchive", "a.main")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "a")


class StateFileTest(RuntimeTestCase):
    def test_a_restarted_process_reloads_its_function(self):
        self.write("/userfunc/deployarchive/hello.py", "def main():\n    return 'again'\n")
        self.assert_specialized("/userfunc/deployarchive", "hello.main")
        with open(self.settings.state_file, encoding="utf-8") as saved:
            self.assertEqual(json.load(saved)["functionName"], "hello.main")

        restarted = create_app(self.settings).test_client()
        self.assertEqual(restarted.get("/").get_data(as_text=True), "again")

    def test_a_stopped_process_forgets_its_function(self):
        self.write("/userfunc/deployarchive/hello.py", "def main():\n    return 'again'\n")
        self.assert_specialized("/userfunc/deployarchive", "hello.main")
        forget_state(self.settings)
        self.assertFalse(os.path.exists(self.settings.state_file))
        self.assertEqual(create_app(self.settings).test_client().get("/").status_code, 500)


class ExamplesTest(RuntimeTestCase):
    def test_hello(self):
        self.copy_example("hello.py", "/userfunc/deployarchive/hello.py")
        self.assert_specialized("/userfunc/deployarchive", "hello.main")
        response = self.client.get("/")
        self.assertEqual((response.status_code, response.get_data(as_text=True)), (200, "Hello, World!\n"))

    def test_hello_as_a_single_file(self):
        self.copy_example("hello.py", "/userfunc/deployarchive")
        self.assert_specialized("/userfunc/deployarchive", "")
        self.assertEqual(self.client.get("/").get_data(as_text=True), "Hello, World!\n")

    def test_greet_reads_the_path_parameter_and_the_body(self):
        self.copy_example("greet.py", "/userfunc/deployarchive/greet.py")
        self.assert_specialized("/userfunc/deployarchive", "greet.main")
        headers = {"X-Fission-Params-Name": "Ada"}
        self.assertEqual(self.client.get("/", headers=headers).get_data(as_text=True), "Hello, Ada!\n")
        response = self.client.post("/", headers=headers, data="nice to meet you")
        self.assertEqual(response.get_data(as_text=True), "Hello, Ada! You said: nice to meet you\n")


if __name__ == "__main__":
    unittest.main()
