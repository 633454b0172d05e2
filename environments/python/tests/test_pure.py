"""Pure rules: entrypoint splitting, pod path resolution, settings from the environment."""

import unittest

from rivulet_runtime.loader import split_entrypoint
from rivulet_runtime.podpath import resolve_pod_path
from rivulet_runtime.settings import Settings


class EntrypointTest(unittest.TestCase):
    def test_fission_rules(self):
        self.assertEqual(split_entrypoint(""), ("main", "main"))
        self.assertEqual(split_entrypoint("handler"), ("main", "handler"))
        self.assertEqual(split_entrypoint("hello.main"), ("hello", "main"))
        self.assertEqual(split_entrypoint("pkg.sub.handle"), ("pkg.sub", "handle"))


class PodPathTest(unittest.TestCase):
    def test_absolute_paths_move_under_the_root(self):
        self.assertEqual(resolve_pod_path("/userfunc/user", "/tmp/pod"), "/tmp/pod/userfunc/user")
        self.assertEqual(resolve_pod_path("/", "/tmp/pod"), "/tmp/pod")

    def test_paths_cannot_climb_above_the_root(self):
        self.assertEqual(resolve_pod_path("/userfunc/../../etc/passwd", "/tmp/pod"), "/tmp/pod/etc/passwd")
        self.assertEqual(resolve_pod_path("//userfunc//x/", "/tmp/pod"), "/tmp/pod/userfunc/x")

    def test_without_root_or_for_relative_paths_nothing_changes(self):
        self.assertEqual(resolve_pod_path("/userfunc/user", None), "/userfunc/user")
        self.assertEqual(resolve_pod_path("/userfunc/user", ""), "/userfunc/user")
        self.assertEqual(resolve_pod_path("code/main.py", "/tmp/pod"), "code/main.py")


class SettingsTest(unittest.TestCase):
    def test_defaults_are_fissions(self):
        settings = Settings.from_env({})
        self.assertEqual((settings.bind_address, settings.port), ("0.0.0.0", 8888))
        self.assertIsNone(settings.root)
        self.assertFalse(settings.access_log)
        self.assertEqual(settings.state_file, "/userfunc/state.json")

    def test_local_mode_variables(self):
        settings = Settings.from_env(
            {
                "RIVULET_BIND_ADDRESS": "127.0.0.7",
                "RIVULET_RUNTIME_PORT": "0",
                "RUNTIME_PORT": "9999",
                "RIVULET_ROOT": "/tmp/pod",
                "RIVULET_ACCESS_LOG": "true",
            }
        )
        self.assertEqual((settings.bind_address, settings.port), ("127.0.0.7", 0))
        self.assertEqual(settings.state_file, "/tmp/pod/userfunc/state.json")
        self.assertTrue(settings.access_log)

    def test_fission_runtime_port_variable(self):
        self.assertEqual(Settings.from_env({"RUNTIME_PORT": "9999"}).port, 9999)


if __name__ == "__main__":
    unittest.main()
