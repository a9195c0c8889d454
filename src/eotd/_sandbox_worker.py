"""The sandbox's worker process: a pre-warmed zygote that forks one locked-down child per program.

Runs as `python -I` with an empty environment (see eotd.sandbox). Protocol: one JSON job per line on stdin, one JSON
result per line on the original stdout; fds 1 and 2 point to /dev/null so nothing a program prints can reach it.
Each job runs in a fresh fork, so programs never see each other's state, and is killed at its wall-clock deadline.
Layers, outermost first:
- an empty file system: after the warm-up the worker enters a private mount (and network) namespace whose root is
  an empty tmpfs, so a child can neither see nor create anything on the host, whatever Python call it finds
  (`os.stat`, `os.mknod` and `os.mkfifo` raise no audit event); where the kernel or user does not allow namespaces,
  this layer is off and `describe()` says so;
- an unprivileged user (nobody, when started as root);
- resource limits (address space, CPU seconds, file size, no new processes);
- a PEP 578 audit hook that Python code cannot remove (no processes, sockets, ctypes, or file access outside the
  job's temp dir) and an import allow-list;
- a bounded result channel: a child that writes more than RESULT_CAP bytes is killed.
The gold answer never enters this process: jobs carry the program only, the caller compares.
"""
from __future__ import annotations

import builtins
import gc
import json
import os
import resource
import select
import shutil
import signal
import sys
import tempfile
import time
from decimal import Decimal
from fractions import Fraction

ALLOWED_IMPORTS = frozenset({
    "math", "cmath", "fractions", "decimal", "numbers", "itertools", "functools", "operator", "collections",
    "datetime", "calendar", "time", "statistics", "random", "re", "string", "heapq", "bisect", "sympy", "mpmath",
})
# Audit events a program may never raise, matched by prefix.
DENIED_EVENTS = (
    "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork", "os.forkpty", "os.kill", "os.killpg",
    "os.setuid", "os.setgid", "os.chroot", "subprocess.", "pty.", "socket.", "ctypes.", "mmap.", "urllib.",
    "http.", "ftplib.", "smtplib.", "webbrowser.", "resource.setrlimit", "resource.prlimit", "sys.remote_exec",
    "builtins.input", "signal.", "_posixsubprocess.",
)
# Events whose first argument is a path: allowed only inside the job's own temp dir.
PATH_EVENTS = frozenset({
    "open", "os.listdir", "os.scandir", "os.chdir", "os.mkdir", "os.rmdir", "os.remove", "os.rename", "os.link",
    "os.symlink", "os.truncate", "os.chmod", "os.chown", "os.utime", "shutil.copyfile", "shutil.rmtree",
    "shutil.move", "shutil.copytree", "os.listxattr", "os.getxattr", "os.setxattr", "os.removexattr",
})
OUTPUT_CAP = 1 << 20
RESULT_CAP = 64 << 10  # a verdict is a short JSON line; more than this is a program flooding the pipe
MAX_DIGITS = 100  # an answer with more digits is no grade-school answer (and str() of 4300+ digits raises)
NOBODY = 65534
_CLONE_NEWNS, _CLONE_NEWUSER, _CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_REC, _MS_PRIVATE = 2, 4, 0x4000, 1 << 18
_MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}  # syscall numbers
LAYERS: dict[str, str] = {}  # what is active in this worker, reported by the "describe" job


class Forbidden(PermissionError):
    """Raised by the audit hook and the import guard; its mere occurrence makes the verdict 'forbidden'."""


class _Sink:
    """sys.stdout/stderr for programs: keeps the first MiB, drops the rest."""

    def __init__(self) -> None:
        self.size = 0

    def write(self, text: str) -> int:
        self.size += len(text)
        return len(text)

    def flush(self) -> None:
        pass


def _encode(value) -> dict:
    """A program's answer as JSON: exact values as text, anything non-numeric as an error."""
    import sympy

    if isinstance(value, sympy.Basic) and value.is_number:
        value = Fraction(int(value.p), int(value.q)) if value.is_Rational else float(value) if value.is_real else value
    if isinstance(value, str):
        return {"reason": "non_numeric", "detail": f"ans is a string: {value[:80]!r}", "text": value[:200]}
    if isinstance(value, Decimal):
        value = Fraction(value) if value.is_finite() else float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, Fraction)):
        return {"reason": "non_numeric", "detail": f"ans is {type(value).__name__}: {repr(value)[:80]}"}
    if isinstance(value, Fraction):
        value = value.numerator if value.denominator == 1 else value
    parts = (value.numerator, value.denominator) if isinstance(value, Fraction) else \
        (value,) if isinstance(value, int) else ()
    if any(abs(p).bit_length() > MAX_DIGITS * 3.33 for p in parts):
        return {"reason": "too_large", "detail": f"ans has more than {MAX_DIGITS} digits"}
    number = "float" if isinstance(value, float) else "exact"
    return {"reason": "ok", "type": number, "value": repr(value) if number == "float" else str(value)}


def _run_pot(source: str, violations: list) -> dict:
    real_import = builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        if level or name.partition(".")[0] not in ALLOWED_IMPORTS:
            violations.append(f"import {name}")
            raise Forbidden(f"import of {name!r} is not allowed")
        return real_import(name, globals, locals, fromlist, level)

    safe_builtins = dict(vars(builtins), __import__=guarded_import)
    for name in ("exit", "quit", "input", "breakpoint", "help", "copyright", "credits", "license"):
        safe_builtins.pop(name, None)
    scope = {"__builtins__": safe_builtins, "__name__": "__main__"}
    code = compile(source, "<program>", "exec")
    exec(code, scope)
    if "ans" in scope:
        value = scope["ans"]
    elif callable(scope.get("solution")):
        value = scope["solution"]()
    else:
        return {"reason": "no_answer", "detail": "the program sets no `ans` and has no solution()"}
    if value is None:
        return {"reason": "no_answer", "detail": "ans is None"}
    return _encode(value)


def _run_eot(source: str, violations: list) -> dict:
    from eotd.equations import solve_eot

    result = solve_eot(source)
    if result.reason != "ok":
        return {"reason": result.reason, "detail": result.detail}
    return _encode(result.answer)


def _install_audit_hook(workdir: str, violations: list) -> None:
    root = os.path.realpath(workdir) + os.sep

    def hook(event: str, args: tuple) -> None:
        if event.startswith(DENIED_EVENTS):
            violations.append(event)
            raise Forbidden(f"{event} is not allowed in the sandbox")
        if event in PATH_EVENTS:
            path = args[0] if args else None
            if isinstance(path, bytes):
                path = os.fsdecode(path)
            if not isinstance(path, str) or not os.path.realpath(path).startswith(root):
                violations.append(f"{event} {path!r}")
                raise Forbidden(f"{event} outside the sandbox's temp dir: {path!r}")
        elif event == "object.__setattr__" and isinstance(args[1], str) and args[1].startswith("__"):
            violations.append(f"setattr {args[1]}")
            raise Forbidden(f"setting {args[1]} is not allowed in the sandbox")

    sys.addaudithook(hook)


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _write(path: str, text: str) -> None:
    with open(path, "w") as handle:
        handle.write(text)


def _isolate(root: str) -> None:
    """Enter private network and mount namespaces and make an empty tmpfs at `root` this process's root directory.

    As root the namespaces are plain; as an ordinary user a user namespace comes first (where the kernel allows it),
    in which the worker may mount and chroot but holds no power over the host. Records what worked in LAYERS.
    """
    try:
        libc = _libc()
    except (OSError, AttributeError):
        LAYERS.update(network="off: no libc", filesystem="off: no libc")
        return
    uid, gid = os.getuid(), os.getgid()
    flags = _CLONE_NEWNET | _CLONE_NEWNS
    if uid != 0:
        flags |= _CLONE_NEWUSER
    if libc.unshare(flags) != 0:
        errno = ctypes_errno()
        if uid == 0 and libc.unshare(_CLONE_NEWNET) == 0:
            LAYERS["network"] = "private empty network namespace"
        else:
            LAYERS["network"] = f"off: unshare failed ({os.strerror(errno)})"
        LAYERS["filesystem"] = f"off: no mount namespace ({os.strerror(errno)}); the audit hook guards paths"
        return
    LAYERS["network"] = "private empty network namespace"
    if uid != 0:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
        LAYERS["user"] = "user namespace: the worker's root has no power over the host"
    try:
        if libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None) != 0:
            raise OSError(ctypes_errno(), "making mounts private")
        if libc.mount(b"tmpfs", root.encode(), b"tmpfs", _MS_NOSUID | _MS_NODEV, b"size=64m,mode=0711") != 0:
            raise OSError(ctypes_errno(), "mounting the tmpfs")
        os.chdir(root)
        pivot = _PIVOT_ROOT.get(os.uname().machine)
        # pivot_root + detaching the old root leaves nothing to climb back to (a bare chroot can be escaped with
        # CAP_SYS_CHROOT, which the namespace's root has); chroot where the syscall number is unknown
        if pivot and libc.syscall(pivot, b".", b".") == 0 and libc.umount2(b".", _MNT_DETACH) == 0:
            how = "pivot_root"
        else:
            os.chroot(".")
            how = "chroot"
        os.chdir("/")
    except OSError as exc:
        LAYERS["filesystem"] = f"off: {exc.strerror or exc}; the audit hook guards paths"
        return
    LAYERS["filesystem"] = f"empty tmpfs root ({how}) in a private mount namespace (no host file is visible)"


def ctypes_errno() -> int:
    import ctypes

    return ctypes.get_errno()


_BASE_BYTES = 0  # the worker's address space after the warm-up: children start from it


def _lock_down(job: dict, workdir: str) -> None:
    os.setpgid(0, 0)
    os.chdir(workdir)
    os.close(0)
    address_space = _BASE_BYTES + (64 << 20) + job["memory_mb"] * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    cpu = int(job["timeout"]) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 << 20, 16 << 20))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if os.getuid() == 0 and "user" not in LAYERS:
        os.chown(workdir, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    sys.stdout = sys.stderr = _Sink()


def _child(job: dict, workdir: str, out_fd: int) -> None:
    violations: list = []
    try:
        _lock_down(job, workdir)
        _install_audit_hook(workdir, violations)
        runner = _run_pot if job["thought"] == "pot" else _run_eot
        result = runner(job["source"], violations)
    except SyntaxError as exc:
        result = {"reason": "syntax_error", "detail": f"line {exc.lineno}: {exc.msg}"}
    except MemoryError:
        result = {"reason": "memory", "detail": "MemoryError: the memory limit was reached"}
    except BaseException as exc:  # noqa: BLE001 - a program may raise anything, SystemExit included
        result = {"reason": "runtime_error", "detail": f"{type(exc).__name__}: {str(exc)[:200]}"}
    if violations:
        result = {"reason": "forbidden", "detail": "; ".join(violations[:3])}
    os.write(out_fd, json.dumps(result).encode())


def _signal_reason(status: int) -> dict:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return {"reason": "timeout", "detail": "CPU time limit reached"}
        if sig == signal.SIGKILL:
            return {"reason": "memory", "detail": "killed (out of memory)"}
        return {"reason": "runtime_error", "detail": f"crashed with signal {signal.Signals(sig).name}"}
    return {"reason": "runtime_error", "detail": f"exited with status {os.WEXITSTATUS(status)} before answering"}


def _run_job(job: dict, tmp_root: str) -> dict:
    workdir = tempfile.mkdtemp(dir=tmp_root)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.closerange(3, write_fd)  # the protocol pipe and everything else the zygote holds
        os.closerange(write_fd + 1, 1 << 16)
        try:
            _child(job, workdir, write_fd)
        finally:
            os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + job["timeout"]
    chunks, size, stopped = [], 0, None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            stopped = {"reason": "timeout", "detail": f"no answer within {job['timeout']} s"}
            break
        if select.select([read_fd], [], [], remaining)[0]:
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            size += len(chunk)
            if size > RESULT_CAP:
                stopped = {"reason": "output_too_large", "detail": f"wrote more than {RESULT_CAP} bytes of result"}
                break
            chunks.append(chunk)
    os.close(read_fd)
    if stopped:
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    _, status = os.waitpid(pid, 0)
    shutil.rmtree(workdir, ignore_errors=True)
    if stopped:
        return stopped
    try:
        return json.loads(b"".join(chunks))
    except ValueError:
        return _signal_reason(status)


def _warm_up() -> None:
    """Import what programs may use and exercise sympy once, so children never read library files."""
    for name in sorted(ALLOWED_IMPORTS):
        __import__(name)
    import sympy  # noqa: F401 - imported above; bound here for the warm-up calls

    from eotd.equations import solve_eot

    solve_eot("a = x\nb = 2 * a\na + b = 9\nans = b")
    solve_eot("side = x\nside ** 2 = 16\nans = side")
    solve_eot("a = x\na = a + 1\nans = a")
    _encode(sympy.Rational(1, 3))


def main() -> None:
    """`python -I -c ... <root>`: root is a fresh empty folder the parent made (and removes)."""
    global _BASE_BYTES
    root = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="eotd-sandbox-")
    out = os.fdopen(os.dup(1), "w")
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    _warm_up()
    gc.freeze()  # children never scan (and so never copy) the zygote's objects
    _BASE_BYTES = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _isolate(root)
    tmp_root = "/" if LAYERS["filesystem"].startswith("empty") else root
    os.chmod(tmp_root, 0o711)
    LAYERS["user_switch"] = "children run as nobody" if os.getuid() == 0 and "user" not in LAYERS else \
        "off: not started as root" if "user" not in LAYERS else "children run as the namespace's root (no host power)"
    LAYERS["limits"] = "address space, CPU seconds, file size, no new processes"
    LAYERS["python"] = "audit hook (processes, sockets, ctypes, paths), import allow-list"
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        job = json.loads(line)
        reply = {"reason": "ok", "layers": LAYERS} if job.get("describe") else _run_job(job, tmp_root)
        out.write(json.dumps(reply) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
