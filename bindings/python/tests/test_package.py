"""The package: stub in sync with the module, command line, docs."""

from __future__ import annotations

import ast
import inspect
import json
import pathlib
import signal
import subprocess
import sys
import urllib.request

import herd
from herd import _herd
from conftest import free_port

STUB = pathlib.Path(herd.__file__).with_name("_herd.pyi")


def stub_names():
    tree = ast.parse(STUB.read_text())
    names = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names[node.name] = {
                n.name for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
            } | {n.target.id for n in node.body if isinstance(n, ast.AnnAssign)}
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names[node.name] = None
        elif isinstance(node, ast.AnnAssign):
            names[node.target.id] = None
    return names


def test_the_stub_lists_exactly_what_the_native_module_has():
    stub = stub_names()
    module = {n for n in dir(_herd) if not n.startswith("__") or n == "__version__"}
    assert set(stub) == module
    for name, members in stub.items():
        obj = getattr(_herd, name)
        if members is None:
            continue
        actual = {
            n for n, _ in inspect.getmembers(obj)
            if not n.startswith("__") or n in ("__enter__", "__exit__", "__new__")
        }
        actual -= {"__new__"} if "__new__" not in members else set()
        assert members == actual, name


def test_everything_public_has_a_docstring():
    missing = []
    for name in herd.__all__:
        obj = getattr(herd, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            if not (obj.__doc__ or "").strip():
                missing.append(name)
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for member, value in vars(obj).items():
                    if not member.startswith("_") and not (getattr(value, "__doc__", "") or "").strip():
                        missing.append(f"{name}.{member}")
    assert not missing


def test_python_m_herd_runs_the_demo_worker():
    port = free_port()
    worker = subprocess.Popen([*herd.demo_command(), "--port", str(port)], stderr=subprocess.PIPE, text=True)
    try:
        assert "listening on" in worker.stderr.readline()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert json.loads(r.read())["pid"] == worker.pid
        worker.send_signal(signal.SIGINT)  # Ctrl-C ends it
        assert worker.wait(timeout=10) == -signal.SIGINT
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()


def test_the_herd_command_prints_its_version():
    exe = pathlib.Path(sys.executable).with_name("herd")
    assert exe.exists(), "the console script is installed next to python"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0 and out.stdout.strip() == f"herd {herd.__version__}"
