"""Shared helpers: a fake pod filesystem and interpreter isolation between tests."""

import logging
import os
import shutil
import sys
import tempfile
import textwrap
import unittest

ENV_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES_DIR = os.path.join(ENV_DIR, "examples")

# Failed specializations are expected in tests; their log lines would only be noise.
logging.getLogger("rivulet.runtime").setLevel(logging.CRITICAL)


class PodTestCase(unittest.TestCase):
    """Gives each test a temporary pod root and undoes what loading user code did to the interpreter.

    The runtime serves one function per process, so it never has to forget a module; tests load
    many functions in one process, and must not see the modules of the previous test.
    """

    def setUp(self):
        self.root = tempfile.mkdtemp(prefix="rivulet-py-test-")
        self.addCleanup(shutil.rmtree, self.root, ignore_errors=True)
        modules_before = set(sys.modules)
        path_before = list(sys.path)

        def restore_interpreter():
            for name in set(sys.modules) - modules_before:
                del sys.modules[name]
            sys.path[:] = path_before

        self.addCleanup(restore_interpreter)

    def write(self, pod_path, source):
        """Write a file at an in-pod absolute path (e.g. `/userfunc/deployarchive/hello.py`)."""
        target = os.path.join(self.root, pod_path.lstrip("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "w", encoding="utf-8") as out:
            out.write(textwrap.dedent(source))
        return target

    def copy_example(self, name, pod_path):
        with open(os.path.join(EXAMPLES_DIR, name), encoding="utf-8") as src:
            return self.write(pod_path, src.read())
