"""Finding and loading the user function, with Fission python-env's entrypoint rules.

- entrypoint ""        -> module `main`, function `main`
- entrypoint "fn"      -> module `main`, function `fn`
- entrypoint "a.b.fn"  -> module `a.b`, function `fn` (split at the last dot)
- a directory is appended to `sys.path` and the module is imported from it;
- a file is loaded as a source module named `mod`, and the module part is ignored.

Every failure is a `LoadError` whose message is meant for the person who wrote the function.
"""

import importlib
import importlib.machinery
import importlib.util
import os
import sys
import traceback

# Name Fission gives a function loaded from a single file (`imp.load_source('mod', path)`).
FILE_MODULE_NAME = "mod"


class LoadError(Exception):
    """The user code could not be turned into a callable; the message says why."""


def split_entrypoint(function_name):
    """Fission's rule: return (module, function) for an entrypoint string."""
    if not function_name:
        return "main", "main"
    module, dot, func = function_name.rpartition(".")
    if not dot:
        return "main", function_name
    return module, func


def load_function(filepath, function_name):
    """Load the entrypoint `function_name` from `filepath` (a file or a directory)."""
    module_name, func_name = split_entrypoint(function_name or "")
    if os.path.isdir(filepath):
        if filepath not in sys.path:
            sys.path.append(filepath)
        importlib.invalidate_caches()
        what = f"module '{module_name}' in {filepath}"
        module = _guarded(what, lambda: importlib.import_module(module_name))
    elif os.path.exists(filepath):
        what = f"file {filepath}"
        module = _guarded(what, lambda: load_source(filepath))
    else:
        raise LoadError(f"cannot load function: {filepath} does not exist")
    return _entrypoint(module, func_name, what)


def load_source(path):
    """Load a Python source file whatever its name (Fission's v1 file is `/userfunc/user`)."""
    loader = importlib.machinery.SourceFileLoader(FILE_MODULE_NAME, path)
    spec = importlib.util.spec_from_loader(FILE_MODULE_NAME, loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[FILE_MODULE_NAME] = module
    try:
        loader.exec_module(module)
    except BaseException:
        sys.modules.pop(FILE_MODULE_NAME, None)
        raise
    return module


def _guarded(what, load):
    try:
        return load()
    except (Exception, SystemExit) as exc:  # user code may raise anything while importing
        raise LoadError(f"cannot load {what}:\n{describe_exception(exc)}") from exc


def _entrypoint(module, func_name, what):
    func = getattr(module, func_name, None)
    if func is None:
        raise LoadError(f"entrypoint '{func_name}' not found in {what}")
    if not callable(func):
        raise LoadError(f"entrypoint '{func_name}' in {what} is not callable")
    return func


def describe_exception(exc):
    """The exception text plus where it was raised in user code (not in the importer)."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).rstrip()
    if isinstance(exc, SyntaxError):
        return text  # already names the file and line
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith(("<frozen", _HERE, _IMPORTLIB))
    ]
    if frames:
        last = frames[-1]
        text += f"\n  at {last.filename}, line {last.lineno}"
    return text


# Frames from these places are the importer's, not the user's.
_HERE = os.path.dirname(os.path.abspath(__file__))
_IMPORTLIB = os.path.dirname(os.path.abspath(importlib.__file__))
