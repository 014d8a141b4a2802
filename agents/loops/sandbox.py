"""Runs untrusted code against tests in a separate, fenced process; whatever it does, the caller gets a report.

The fences, so that one gap does not open the others:
- a child process in its own session, killed with its whole process group at the wall-clock limit,
  its output going to files (capped in size) rather than pipes, so nothing it leaves behind can
  hold the caller up;
- resource limits: address space, CPU seconds, processes, file size, open files;
- a fresh temporary folder as its working directory, removed afterwards;
- a clean environment (no inherited variables, so no secrets) and Python's isolated mode;
- the verdict behind a marker made for the run and handed over on stdin, and only from a run that
  exits cleanly, so printed text or an early exit cannot pass for it (code that goes looking for the
  marker in the runner's frames could still forge one: the sandbox contains what code does, it does
  not certify code written to cheat);
- an audit hook, installed before the code runs, that refuses sockets, new processes, `ctypes` and
  writes outside the folder (a convenience layer: determined code in the same interpreter may find a
  way around it, which is why the fences below exist);
- where the system allows it (`unshare`): network and PID namespaces (no interfaces up; every
  process left is killed with the sandbox's first one), and, as root, the `nobody` user under the
  system's own Python, so the process limit binds and file permissions apply.
"""

from __future__ import annotations

import json
import os
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
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


#: Run inside the child, before the code: fences that live in the interpreter itself. Everything the hook
#: needs is bound into it, and this preamble's names are deleted, so the code cannot reach in and switch it off.
_GUARD = r'''
import os as _os, sys as _sys
def _make_guard(root, blocked, denied_imports, write_events):
    realpath, fsdecode, sep, pathlike = _os.path.realpath, _os.fsdecode, _os.sep, (str, bytes, _os.PathLike)
    write_flags = _os.O_WRONLY | _os.O_RDWR | _os.O_CREAT | _os.O_APPEND
    def inside(path):
        try:
            real = realpath(fsdecode(path))
        except Exception:
            return False
        return real == root or real.startswith(root + sep)
    def hook(event, args):
        if event in blocked:
            raise PermissionError("sandbox: " + event + " is not allowed")
        if event == "import" and args and args[0] in denied_imports:
            raise PermissionError("sandbox: importing " + args[0] + " is not allowed")
        if event == "open" and args and isinstance(args[0], pathlike):
            mode = args[1] if len(args) > 1 and isinstance(args[1], str) else ""
            flags = args[2] if len(args) > 2 and isinstance(args[2], int) else 0
            if (any(c in mode for c in "wax+") or flags & write_flags) and not inside(args[0]):
                raise PermissionError("sandbox: writing outside the sandbox folder is not allowed")
        if event in write_events:
            for path in args[:2]:
                if isinstance(path, pathlike) and not inside(path):
                    raise PermissionError("sandbox: " + event + " outside the sandbox folder is not allowed")
    return hook
_sys.addaudithook(_make_guard(
    _os.path.realpath(_os.getcwd()),
    frozenset({"socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto", "socket.__new__",
               "subprocess.Popen", "os.system", "os.fork", "os.forkpty", "os.posix_spawn", "os.exec", "os.spawn",
               "os.kill", "os.killpg", "ctypes.dlopen", "ctypes.cdata", "ctypes.dlsym", "pty.spawn",
               "sys.addaudithook", "os.setuid", "os.chdir"}),
    frozenset({"_posixsubprocess", "_ctypes", "ctypes", "multiprocessing", "_socket", "socket"}),
    frozenset({"os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.chmod", "os.chown",
               "os.link", "os.symlink", "os.truncate", "os.utime"})))
del _make_guard, _os, _sys
'''

#: The code and the tests; the verdict goes to stdout behind a marker that only this run knows (read from
#: stdin before any of the code runs), and the runner exits 0 only after writing it.
_RUNNER = r'''
def _run(marker):
    import json, sys, traceback
    source, tests = open("solution.py").read(), open("tests.py").read()
    try:
        scope = {"__name__": "solution"}
        exec(compile(source, "solution.py", "exec"), scope)
        exec(compile(tests, "tests.py", "exec"), scope)
        verdict = {"outcome": "passed", "detail": ""}
    except AssertionError:
        verdict = {"outcome": "failed", "detail": traceback.format_exc()}
    except BaseException:
        verdict = {"outcome": "error", "detail": traceback.format_exc()}
    sys.stdout.flush()
    sys.stdout.write("\n" + marker + json.dumps(verdict) + "\n")
    sys.stdout.flush()
_run(__import__("sys").stdin.readline().strip())
'''

#: Sandboxes running at once; each may hold `processes` processes, all under one user's process limit.
SLOTS = 4
_slots = threading.BoundedSemaphore(SLOTS)


NOBODY = 65534
#: An interpreter the `nobody` user can run (a Python under /root is out of its reach).
SYSTEM_PYTHON = Path("/usr/bin/python3")


@lru_cache(maxsize=1)
def _isolation() -> list[str]:
    """The command prefix that fences network and processes where this system allows it.

    As root: new network and PID namespaces (when the sandbox's first process dies, the kernel kills
    every process left in it) and the `nobody` user, under the system's own Python. Otherwise, where
    unprivileged user namespaces are allowed, the same namespaces as a mapped user. Else none.
    """
    if shutil.which("unshare") is None:
        return []
    if os.geteuid() == 0 and SYSTEM_PYTHON.exists():
        candidates = [["unshare", "-n", "-p", "-f", "--kill-child", "-S", str(NOBODY), "-G", str(NOBODY),
                       str(SYSTEM_PYTHON)]]
    else:
        candidates = [["unshare", "-r", "-n", "-p", "-f", "--kill-child", sys.executable]]
    for prefix in candidates:
        try:
            probe = subprocess.run([*prefix, "-I", "-S", "-c", "pass"], capture_output=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            continue
        if probe.returncode == 0:
            return prefix
    return []


def _fence(limits: SandboxLimits):
    """The child's first act, before it becomes the sandboxed interpreter: its resource limits."""
    memory = limits.memory_mb * 2**20
    cpu = int(limits.wall_s) + 1
    processes = (limits.processes + 2) * SLOTS  # the user's limit covers every slot (and unshare's own)

    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_FSIZE, (OUTPUT_CAP, OUTPUT_CAP))
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))

    return apply


#: The most a run may write (its output files included): beyond it, writes fail with "file too large".
OUTPUT_CAP = 16 * 2**20


def run_tests(code: str, tests: str, limits: SandboxLimits | None = None, guard: bool = True) -> SandboxReport:
    """Run `code`, then `tests` (assertions) in the sandbox; never raises for anything the code does.

    `guard=False` leaves out the audit hook, so tests can show the other fences hold on their own.
    """
    limits = limits or SandboxLimits()
    folder = Path(tempfile.mkdtemp(prefix="simulacra-sandbox-"))
    try:
        (folder / "solution.py").write_text(code, encoding="utf-8")
        (folder / "tests.py").write_text(tests, encoding="utf-8")
        (folder / "run.py").write_text((_GUARD if guard else "") + _RUNNER, encoding="utf-8")
        prefix = _isolation()
        if prefix and os.geteuid() == 0:
            for path in (folder, *folder.iterdir()):
                os.chown(path, NOBODY, NOBODY)
        command = [*(prefix or [sys.executable]), "-I", "-S", "run.py"]
        with _slots:
            report = _execute(command, folder, limits, bool(prefix))
        return report.model_copy(update={"detail": _readable(report.detail, folder)})
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _readable(detail: str, folder: Path) -> str:
    """The error as the coder should see it: no temporary path (it differs every run), no runner frames."""
    lines, skip_source = [], False
    for line in detail.replace(str(folder) + os.sep, "").replace(str(folder), ".").splitlines():
        if line.lstrip().startswith("File ") and "run.py" in line:
            skip_source = True  # the runner's own frame, and the source line under it
            continue
        if skip_source and line.startswith("    ") and not line.lstrip().startswith("File "):
            continue
        skip_source = False
        lines.append(line)
    return "\n".join(lines).strip()


def _tail(path: Path, chars: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(max(0, path.stat().st_size - 4 * chars))
            return handle.read().decode("utf-8", errors="replace")[-chars:]
    except OSError:
        return ""


def _execute(command: list[str], folder: Path, limits: SandboxLimits, isolated: bool) -> SandboxReport:
    started = time.perf_counter()
    marker = f"@@SANDBOX-{secrets.token_hex(16)}@@"
    env = {"PATH": "/usr/bin:/bin", "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "HOME": str(folder)}
    out_path, err_path = folder / "stdout.txt", folder / "stderr.txt"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        try:
            child = subprocess.Popen(command, cwd=folder, env=env, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                     start_new_session=True,
                                     preexec_fn=_fence(limits))  # noqa: PLW1509 - the point of the sandbox
        except OSError as exc:
            return SandboxReport(passed=False, outcome="crashed", detail=f"could not start: {exc}")
        try:
            child.stdin.write((marker + "\n").encode())
            child.stdin.close()
        except OSError:
            pass
        try:
            child.wait(timeout=limits.wall_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        try:
            os.killpg(child.pid, signal.SIGKILL)  # the PID namespace, where there is one, takes the rest
        except (ProcessLookupError, PermissionError):
            pass
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
    seconds = round(time.perf_counter() - started, 3)
    base = {"seconds": seconds, "network_isolated": isolated}
    if timed_out:
        return SandboxReport(passed=False, outcome="timeout", detail=f"no result within {limits.wall_s:g} s", **base)
    text = _tail(out_path, limits.output_chars + 2000)
    verdict = _verdict(text, marker) if child.returncode == 0 else None
    if verdict is None:
        why = _tail(err_path, limits.output_chars).strip() or f"exit code {child.returncode}"
        if child.returncode is not None and child.returncode < 0:
            why = f"killed by signal {-child.returncode} ({signal.Signals(-child.returncode).name}); {why}"
        return SandboxReport(passed=False, outcome="crashed", detail=why, **base)
    outcome, detail = verdict
    return SandboxReport(passed=outcome == "passed", outcome=outcome, detail=detail[-limits.output_chars:], **base)


def _verdict(text: str, marker: str) -> tuple[str, str] | None:
    """The runner's verdict behind this run's marker, or None when there is none or it is malformed."""
    at = text.rfind(marker)
    if at < 0:
        return None
    try:
        verdict = json.loads(text[at + len(marker):].strip().splitlines()[0])
        outcome, detail = verdict["outcome"], verdict["detail"]
    except (ValueError, IndexError, KeyError, TypeError):
        return None
    if outcome not in ("passed", "failed", "error") or not isinstance(detail, str):
        return None
    return outcome, detail
