"""Runs untrusted code against tests in a separate, fenced process; whatever it does, the caller gets a report.

The fences, each on its own so that one gap does not open the others:
- a child process in its own session, killed with its whole process group at the wall-clock limit;
- resource limits: address space, CPU seconds, processes, file size, open files;
- a fresh temporary folder as its working directory, removed afterwards;
- a clean environment (no inherited variables, so no secrets) and Python's isolated mode;
- an audit hook, installed before the code runs, that refuses sockets, new processes, `ctypes` and
  writes outside the folder;
- where the system allows it (`unshare -n`, as root), a network namespace with no interfaces up, and
  the code runs as the `nobody` user under the system's own Python, so the process limit binds and
  the file system's permissions apply (a root process ignores both).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field


class SandboxLimits(BaseModel):
    wall_s: float = Field(default=10.0, gt=0, le=600)
    memory_mb: int = Field(default=512, ge=64, le=65536)
    processes: int = Field(default=16, ge=1, le=4096)
    output_chars: int = Field(default=4000, ge=100, le=1_000_000)


class SandboxReport(BaseModel):
    """What running the code against its tests came to; `passed` only when every test ran and held."""

    passed: bool
    outcome: str  # passed | failed | error | timeout | crashed
    detail: str = ""
    seconds: float = 0.0
    network_isolated: bool = False


#: Run inside the child, before the code: fences that live in the interpreter itself.
_GUARD = r'''
import os, sys
_root = os.path.realpath(os.getcwd())
_blocked = {"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "socket.__new__",
            "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn",
            "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.cdata", "ctypes.dlsym", "pty.spawn"}
def _inside(path):
    try:
        return os.path.realpath(path).startswith(_root + os.sep) or os.path.realpath(path) == _root
    except Exception:
        return False
def _hook(event, args):
    if event in _blocked:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open" and args and isinstance(args[0], (str, bytes, os.PathLike)):
        mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
        flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
        writes = any(c in mode for c in "wax+") or flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND)
        if writes and not _inside(os.fsdecode(args[0])):
            raise PermissionError(f"sandbox: writing outside the sandbox folder is not allowed")
    if event in ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.chmod") and args:
        if not _inside(os.fsdecode(args[0])):
            raise PermissionError(f"sandbox: {event} outside the sandbox folder is not allowed")
sys.addaudithook(_hook)
'''

#: The code and the tests, then the verdict on the last line of stdout.
_RUNNER = r'''
import json, sys, traceback
_source, _tests = open("solution.py").read(), open("tests.py").read()
try:
    _scope = {"__name__": "solution"}
    exec(compile(_source, "solution.py", "exec"), _scope)
    exec(compile(_tests, "tests.py", "exec"), _scope)
    verdict = {"outcome": "passed", "detail": ""}
except AssertionError as exc:
    lines = traceback.format_exc().strip().splitlines()
    verdict = {"outcome": "failed", "detail": "\n".join(lines[-6:])}
except BaseException as exc:
    lines = traceback.format_exc().strip().splitlines()
    verdict = {"outcome": "error", "detail": "\n".join(lines[-8:])}
sys.stdout.flush()
print("\n@@SANDBOX@@" + json.dumps(verdict))
'''


NOBODY = 65534
#: An interpreter the `nobody` user can run (a Python under /root is out of its reach).
SYSTEM_PYTHON = Path("/usr/bin/python3")


@lru_cache(maxsize=1)
def _isolation() -> list[str]:
    """The command prefix that fences the network and drops to `nobody`, where this system allows it."""
    prefix = ["unshare", "-n", "-S", str(NOBODY), "-G", str(NOBODY)]
    if shutil.which("unshare") is None or os.geteuid() != 0 or not SYSTEM_PYTHON.exists():
        return []
    try:
        probe = subprocess.run([*prefix, str(SYSTEM_PYTHON), "-I", "-S", "-c", "pass"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [*prefix, str(SYSTEM_PYTHON)] if probe.returncode == 0 else []


def _fence(limits: SandboxLimits):
    """The child's first act, before it becomes the sandboxed interpreter: its resource limits."""
    memory = limits.memory_mb * 2**20
    cpu = int(limits.wall_s) + 1

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 2**20, 16 * 2**20))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.processes, limits.processes))

    return apply


def run_tests(code: str, tests: str, limits: SandboxLimits | None = None) -> SandboxReport:
    """Run `code`, then `tests` (assertions) in the sandbox; never raises for anything the code does."""
    limits = limits or SandboxLimits()
    folder = Path(tempfile.mkdtemp(prefix="simulacra-sandbox-"))
    try:
        (folder / "solution.py").write_text(code, encoding="utf-8")
        (folder / "tests.py").write_text(tests, encoding="utf-8")
        (folder / "run.py").write_text(_GUARD + _RUNNER, encoding="utf-8")
        prefix = _isolation()
        if prefix:
            for path in (folder, *folder.iterdir()):
                os.chown(path, NOBODY, NOBODY)
        command = [*(prefix or [sys.executable]), "-I", "-S", "run.py"]
        return _execute(command, folder, limits, bool(prefix))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _execute(command: list[str], folder: Path, limits: SandboxLimits, isolated: bool) -> SandboxReport:
    started = time.perf_counter()
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(folder)}
    try:
        child = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, start_new_session=True,
                                 preexec_fn=_fence(limits))  # noqa: PLW1509 - the point of the sandbox
    except OSError as exc:
        return SandboxReport(passed=False, outcome="crashed", detail=f"could not start: {exc}")
    try:
        out, err = child.communicate(timeout=limits.wall_s)
        timed_out = False
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        try:
            os.killpg(child.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    if timed_out:
        child.communicate()
        return SandboxReport(passed=False, outcome="timeout", detail=f"no result within {limits.wall_s:g} s",
                             seconds=round(time.perf_counter() - started, 3), network_isolated=isolated)
    seconds = round(time.perf_counter() - started, 3)
    text = out.decode("utf-8", errors="replace")
    marker = text.rfind("@@SANDBOX@@")
    if marker < 0:
        why = err.decode("utf-8", errors="replace").strip()[-limits.output_chars:] or f"exit code {child.returncode}"
        if child.returncode < 0:
            why = f"killed by signal {-child.returncode} ({signal.Signals(-child.returncode).name}); {why}"
        return SandboxReport(passed=False, outcome="crashed", detail=why, seconds=seconds, network_isolated=isolated)
    verdict = json.loads(text[marker + len("@@SANDBOX@@"):].strip().splitlines()[0])
    return SandboxReport(passed=verdict["outcome"] == "passed", outcome=verdict["outcome"],
                         detail=verdict["detail"][-limits.output_chars:], seconds=seconds, network_isolated=isolated)
