"""The one sandbox for code the tool did not write: a learner's training loop (`check 4`) and
a pack's steps, helpers and templates. Two ways to run such code, one set of rules.

In a child process (`run_function`), for code whose result is data: `pack check` and
`pack add` run a whole pack there, `check 4` a learner's file.

    outcome = run_function("package.module:function", [json-able args], limit=20.0)
    outcome.value       # what function(*args) returned (JSON), when it returned
    outcome.problem     # else why not: see Outcome

- The child is a fresh Python (`python -P`, stdin from /dev/null, stdout and stderr in one
  pipe of which the last lines are kept) in a session of its own, so it leads a process
  group; that whole group is killed on every way out: the function's end, the hard time
  limit, an exception in the parent, Ctrl-C, SIGTERM or SIGHUP (the signal then has its
  usual effect, once the group is gone). Whatever the code started goes with it.
- Readiness is signalled, not assumed: the child's function calls `ready()` just before it
  runs the untrusted code (after importing torch and the like; `run_function` calls it
  otherwise when the function returns). The child gets `startup` seconds to become ready,
  and from then `limit + grace` seconds before the hard kill, however busy the machine is.
  Inside the child, the function sets the soft limits of its own (`arm`, `bounded`) so
  that what ran too long can be named.
- The result comes back on a channel of its own: an anonymous file handed over by
  descriptor (a named file without process groups), stamped with a secret token the child
  reads and wipes before any untrusted code runs, and written after it ends. Nothing the
  code prints, and nothing it writes where a result could go, is taken for the result; a
  result without the token is "foreign". This guards against accidents and careless code,
  not against code bent on faking a result: that code already runs with the user's
  permissions (which is why `pack check` says so before running a pack).
- A child that ends without a result is reported as such (`problem` None, `value` None,
  `returncode` says how), distinct from the time limit (`killed`), a fault of the
  function itself (`problem == "child_error"`), a child that never got going
  (`"not_started"`) and a foreign result (`"foreign"`).

In the session process (`bounded`), for code that must run where the learner's session
is (a step whose graph is captured, a live training view, helpers called by expressions):

    with bounded(STEP_SECONDS, "the code of step 'Train'"):
        exec(code, names)

raises `Escaped` (an Exception with a one-line message) when the code runs past its time
limit (SIGALRM, main thread only; re-raised every 0.1 s until the block ends, so an
`except BaseException` in the code can't keep it going), calls sys.exit / raises
SystemExit (or another BaseException but KeyboardInterrupt), or calls os._exit / os.abort
(replaced while the block runs). Any process the code started (and, on Linux, anything
those started, kept as our children with PR_SET_CHILD_SUBREAPER while the block runs) is
killed when the block ends, however it ends. Elsewhere than Linux processes are not
tracked; off the main thread there is no time limit. KeyboardInterrupt goes through
untouched (after the kill).

This module imports no torch, and neither views nor content: a child's function is named
by a string.
"""

from __future__ import annotations

import importlib
import json
import os
import secrets
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import autograd_tutor

# Seconds a child may take to become ready (start Python, import torch) on a busy machine.
STARTUP_LIMIT = 120.0
# Seconds after `limit` before the hard kill: the child's own soft limits act first.
GRACE = 5.0
# The time limit of one step (or one helpers.py, one expression) of a pack's code.
STEP_SECONDS = 20.0
OUTPUT_LINES = 20
# The most of the child's output kept in memory; an endless print loop can print a lot.
OUTPUT_BYTES = 64 * 1024
MAX_RESULT_BYTES = 16 * 1024 * 1024
# After the child ends, how long to wait for output still on its way through the pipe.
DRAIN_SECONDS = 0.5

_CHILD_ENTRY = (
    "import sys; from autograd_tutor.engine.sandbox import child_main; child_main(sys.argv[1:])"
)
GROUPS = os.name == "posix" and hasattr(os, "killpg")
_STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)
)


# --- the parent side --------------------------------------------------------------------


@dataclass
class Outcome:
    """What became of a child. `value` is the function's return value when `problem` is
    None and `returned` is true; otherwise:

    - `killed`: the hard time limit (`ready` says whether the child had got going);
    - `stopped`: the signal (SIGINT, ...) that stopped the parent while the child ran, if
      its handler returned instead of ending the program;
    - `problem`: "not_started" (the child failed before the function ran: `output` says
      why), "foreign" (the channel held something the child's own code didn't write),
      "child_error" (the function raised, or returned what JSON can't hold: `detail`);
    - none of these: the child exited without a result (os._exit, a crash, a signal):
      `returncode` says how (negative: killed by that signal).
    """

    value: Any = None
    returned: bool = False
    killed: bool = False
    ready: bool = False
    returncode: int | None = None
    output: str = ""
    problem: str | None = None
    detail: str = ""
    stopped: int | None = None

    def exit_text(self) -> str:
        """How the child ended, in words: 'was killed by SIGKILL', 'exited with status 3'."""
        code = self.returncode
        if code is not None and code < 0:
            try:
                return f"was killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"was killed by signal {-code}"
        return "ended" if code == 0 else f"exited with status {code}"


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child: this one, finding this package, with matplotlib's Agg
    backend (a plt.show() must not open a window that blocks the child)."""
    return {**autograd_tutor.child_environment(), "MPLBACKEND": "Agg", **(extra or {})}


def run_function(entry: str, args: list[Any], *, limit: float, grace: float = GRACE,
                 startup: float = STARTUP_LIMIT, env: dict[str, str] | None = None) -> Outcome:
    """Run `entry` ("package.module:function") with `args` in a child process; see the
    module's docstring. Only a KeyboardInterrupt gets through (or the end of the program by
    SIGTERM or SIGHUP), once the child's whole process group is killed."""
    guard = _SignalGuard()
    environment = env if env is not None else child_environment()
    payload = json.dumps(args)
    try:
        with guard:
            if GROUPS:
                return _supervise(entry, payload, limit + grace, startup, environment, guard)
            return _supervise_plain(entry, payload, limit + grace + startup, environment)
    except _Stopped as stop:
        # Everything the child started is gone and the handlers are restored: the signal now
        # does what it would have done without the sandbox (end the program, or raise
        # KeyboardInterrupt in the caller).
        signal.raise_signal(stop.signum)
        return Outcome(stopped=stop.signum)


def _command(entry: str, channel: str, ready: int, payload: str) -> list[str]:
    # -P: the current folder is not put on sys.path before the sandbox's own imports, so a
    # json.py or signal.py there can't break them.
    return [sys.executable, "-P", "-c", _CHILD_ENTRY, entry, channel, str(ready), payload]


class _Stopped(BaseException):
    """SIGINT, SIGTERM or SIGHUP reached the parent while the child ran."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class _SignalGuard:
    """While the child runs, SIGINT, SIGTERM and SIGHUP raise _Stopped, so the child's whole
    process group is killed before the signal takes effect; inside `held()` (starting the
    child, cleaning up) they wait until the block is over. Handlers can only be set from the
    main thread; elsewhere the guard does nothing, and a KeyboardInterrupt still goes
    through the same clean-up. A signal the program ignores (nohup) stays ignored."""

    def __init__(self) -> None:
        self.previous: dict[int, Any] = {}
        self.holding = 0
        self.pending: int | None = None

    def __enter__(self) -> _SignalGuard:
        if threading.current_thread() is not threading.main_thread():
            return self
        for signum in _STOP_SIGNALS:
            previous = signal.getsignal(signum)
            if previous is None or previous == signal.SIG_IGN:
                continue  # set outside Python (can't be restored), or ignored on purpose
            self.previous[signum] = previous
            signal.signal(signum, self._handle)
        return self

    def __exit__(self, kind: type[BaseException] | None, *rest: object) -> None:
        for signum, previous in self.previous.items():
            signal.signal(signum, previous)
        self.previous.clear()
        pending, self.pending = self.pending, None
        if pending is not None and not (kind and issubclass(kind, _Stopped)):
            raise _Stopped(pending)

    def _handle(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = self.pending or signum
            return
        raise _Stopped(signum)

    @contextmanager
    def held(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1

    def check(self) -> None:
        """Raise a signal that arrived while held."""
        if self.pending is not None and not self.holding:
            pending, self.pending = self.pending, None
            raise _Stopped(pending)


def _supervise(entry: str, payload: str, limit: float, startup: float,
               env: dict[str, str], guard: _SignalGuard) -> Outcome:
    """Run the child in a session of its own (so it leads a process group) and kill that
    whole group on every way out."""
    token = secrets.token_hex(16)
    # An anonymous file (no name to find, nothing to remove), handed over by descriptor.
    with tempfile.TemporaryFile(prefix="autograd-tutor-check-") as channel:
        channel.write(token.encode("ascii"))
        channel.flush()
        tail = Tail()
        proc: subprocess.Popen[bytes] | None = None
        finished = ready = False
        ready_read, ready_write = os.pipe()
        try:
            with guard.held():  # a signal now could leave a child nobody knows about
                proc = subprocess.Popen(
                    _command(entry, str(channel.fileno()), ready_write, payload),
                    stdin=subprocess.DEVNULL,  # input() fails at once instead of waiting
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    env=env,
                    pass_fds=(channel.fileno(), ready_write),
                    start_new_session=True,
                )
            os.close(ready_write)
            ready_write = -1
            guard.check()
            finished, ready = _wait(proc, tail, ready_read, startup, limit)
        finally:
            with guard.held():
                for fd in (ready_read, ready_write):
                    if fd >= 0:
                        os.close(fd)
                if proc is not None:
                    _end(proc, tail)
        outcome = _read_result(channel, token)
    assert proc is not None
    outcome.killed, outcome.ready = not finished, ready
    outcome.returncode, outcome.output = proc.returncode, tail.text()
    return outcome


def _supervise_plain(entry: str, payload: str, limit: float, env: dict[str, str]) -> Outcome:
    """Without process groups (Windows): the child alone is killed at the time limit, which
    counts from its start (no readiness signal)."""
    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="autograd-tutor-check-") as tmp:
        channel = Path(tmp) / f"{secrets.token_hex(8)}.json"
        channel.write_bytes(token.encode("ascii"))
        with subprocess.Popen(
            _command(entry, str(channel), -1, payload), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
        ) as proc:
            try:
                output, _ = proc.communicate(timeout=limit)
                killed = False
            except subprocess.TimeoutExpired as expired:
                proc.kill()
                output, killed = expired.stdout or b"", True
            except BaseException:  # Ctrl-C, a signal: leaving `with` would wait for the child
                proc.kill()
                raise
        with channel.open("rb") as handle:
            outcome = _read_result(handle, token)
    outcome.killed, outcome.ready = killed, not killed
    outcome.returncode, outcome.output = proc.returncode, tail_text(output)
    return outcome


def tail_text(text: str | bytes | None) -> str:
    """The last OUTPUT_LINES lines of `text`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    return "\n".join((text or "").splitlines()[-OUTPUT_LINES:])


class Tail:
    """The end of what the child printed: enough for OUTPUT_LINES lines, not all of an
    endless print loop."""

    def __init__(self) -> None:
        self.data = bytearray()

    def read_from(self, stream: Any) -> bool:
        """Read what is there; False at the end of the output."""
        try:
            chunk = os.read(stream.fileno(), 65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        self.data += chunk
        if len(self.data) > 2 * OUTPUT_BYTES:
            del self.data[:-OUTPUT_BYTES]
        return bool(chunk)

    def text(self) -> str:
        return tail_text(bytes(self.data[-OUTPUT_BYTES:]))


def _wait(proc: subprocess.Popen[bytes], tail: Tail, ready_fd: int, startup: float,
          limit: float) -> tuple[bool, bool]:
    """Collect output until the child exits; (exited, ready). The child gets `startup`
    seconds to signal that it is ready, then `limit` seconds more. Not the end of the
    output: whatever the child started may hold the pipe open. The child is left unreaped,
    so its pid, the id of its process group, can't be reused before the kill."""
    ready = False
    deadline = time.monotonic() + startup
    exit_fd = _pidfd(proc.pid)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)  # type: ignore[arg-type]
            selector.register(ready_fd, selectors.EVENT_READ)
            if exit_fd is not None:
                selector.register(exit_fd, selectors.EVENT_READ)  # readable once it exits
            while not _has_exited(proc):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False, ready
                wait = remaining if exit_fd is not None else min(remaining, 0.05)
                for key, _ in selector.select(wait):
                    if key.fileobj is proc.stdout and not tail.read_from(proc.stdout):
                        selector.unregister(proc.stdout)
                    elif key.fileobj == ready_fd:
                        selector.unregister(ready_fd)
                        try:
                            signalled = os.read(ready_fd, 1) == b"R"
                        except OSError:
                            signalled = False
                        if signalled and not ready:
                            ready, deadline = True, time.monotonic() + limit
            return True, ready
    finally:
        if exit_fd is not None:
            os.close(exit_fd)


def _pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)  # Linux 5.3+
    except (AttributeError, OSError):
        return None


def _has_exited(proc: subprocess.Popen[bytes]) -> bool:
    if not hasattr(os, "waitid"):
        return proc.poll() is not None
    try:
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT  # look, but don't reap
        return os.waitid(os.P_PID, proc.pid, flags) is not None
    except ChildProcessError:
        return True


def _end(proc: subprocess.Popen[bytes], tail: Tail) -> None:
    """Kill the child's process group (the child and all it started), reap the child, and
    take what output is left."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # a session leader's pid is its group's id
    except OSError:  # the group is gone already (or, on macOS, holds only zombies)
        pass
    try:
        proc.kill()
        proc.wait(timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        pass
    assert proc.stdout is not None
    deadline = time.monotonic() + DRAIN_SECONDS
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        # Until the end of the output, unless a program that left the group keeps it open.
        while (remaining := deadline - time.monotonic()) > 0 and selector.select(remaining):
            if not tail.read_from(proc.stdout):
                break
    proc.stdout.close()


def _read_result(channel: Any, token: str) -> Outcome:
    """The child's result or, without one, why (see Outcome.problem and Outcome.detail)."""
    channel.seek(0)
    data = channel.read(MAX_RESULT_BYTES + 1)
    if data == token.encode("ascii"):
        return Outcome(problem="not_started")  # the child never took the token
    if not data:
        return Outcome()
    try:
        message = json.loads(data)
    except (ValueError, RecursionError):
        return Outcome(problem="foreign")
    if not isinstance(message, dict) or message.get("token") != token:
        return Outcome(problem="foreign")
    if "error" in message:
        return Outcome(problem="child_error", detail=str(message["error"]))
    return Outcome(value=message.get("value"), returned=True)


# --- the child side ---------------------------------------------------------------------


_ready_fd = [-1]


def ready() -> None:
    """In a child: say that the untrusted code is about to run (the parent's time limit
    starts now). Call it once the slow imports are done; later calls do nothing."""
    fd, _ready_fd[0] = _ready_fd[0], -1
    if fd < 0:
        return
    try:
        os.write(fd, b"R")
    except OSError:
        pass
    try:
        os.close(fd)
    except OSError:
        pass


def child_main(argv: list[str]) -> None:
    """Run the function named by argv[0] with the JSON arguments argv[3], send its result
    back and end this process. argv[1] is the channel, a descriptor the parent passed (or,
    without process groups, a file name); it starts with a secret token, which is read and
    wiped before the function runs. argv[2] is the descriptor to signal readiness on (-1:
    none)."""
    entry, channel, ready_fd, payload = argv[0], argv[1], int(argv[2]), argv[3]
    me, dumps = os.getpid(), json.dumps  # bound now: the code may rebind anything
    fd = int(channel) if channel.isdigit() else os.open(channel, os.O_RDWR)
    os.lseek(fd, 0, os.SEEK_SET)
    token = os.read(fd, 256).decode("ascii", errors="replace")
    os.ftruncate(fd, 0)
    identity = _identity(fd)
    os.set_inheritable(fd, False)  # programs the code starts don't get it
    if ready_fd >= 0:
        os.set_inheritable(ready_fd, False)
        _ready_fd[0] = ready_fd
    message: dict[str, Any] = {"token": token}
    try:
        module, _, name = entry.partition(":")
        function = getattr(importlib.import_module(module), name)
        message["value"] = function(*json.loads(payload))
    except BaseException as error:  # a fault of the function's own, reported as such
        message["error"] = error_text(error)
    if os.getpid() != me:  # a copy of this process made by os.fork() in the code
        os._exit(0)
    ready()
    try:
        data = dumps(message).encode("utf-8")  # NaN and Infinity too, as json reads them
    except BaseException as error:
        data = dumps({"token": token, "error": error_text(error)}).encode("utf-8")
    # The code may have closed the channel and opened something else under its number.
    if identity is not None and _identity(fd) == identity:
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            while data:
                data = data[os.write(fd, data):]
        except OSError:
            pass
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()  # type: ignore[union-attr]
        except BaseException:
            pass
    # No interpreter shutdown: the code's leftover threads or atexit hooks can't hang it.
    os._exit(0)


def _identity(fd: int) -> tuple[int, int] | None:
    try:
        st = os.fstat(fd)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def safe_text(value: Any, limit: int = 500) -> str:
    """str(value), which may run untrusted code (__str__), or a stand-in if that fails."""
    try:
        text = str(value)
    except BaseException:
        return "(a message that can't be shown)"
    return text[:limit] if type(text) is str else "(a message that can't be shown)"


def error_text(error: BaseException) -> str:
    """'TypeName: message' (or the type alone), safely."""
    message = safe_text(error)
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


# --- time limits by alarm (main thread) -------------------------------------------------


class TimeLimit(BaseException):
    """Raised by the alarm; not an Exception, so an `except Exception` can't eat it."""


_alarm = {"armed": False, "again": 0.0}


def _raise_time_limit(signum: int, frame: object) -> None:
    # Only while armed: an alarm that lands as the limit is switched off is let go.
    if _alarm["armed"]:
        if not _alarm["again"]:
            _alarm["armed"] = False
        raise TimeLimit


def can_alarm() -> bool:
    return hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()


def arm(seconds: float, again: float = 0.0) -> bool:
    """Raise TimeLimit in the main thread after `seconds` (and every `again` seconds after
    that, if given, until `disarm`). False where no alarm can be set (Windows, another
    thread): then only a parent's hard kill limits the code."""
    if not can_alarm():
        return False
    signal.signal(signal.SIGALRM, _raise_time_limit)
    _alarm["armed"], _alarm["again"] = True, again
    signal.setitimer(signal.ITIMER_REAL, seconds, again)
    return True


def disarm() -> None:
    _alarm["armed"] = False
    if can_alarm():
        signal.setitimer(signal.ITIMER_REAL, 0)


# --- bounded code in this process -------------------------------------------------------


class Escaped(Exception):
    """Code under `bounded` ran too long, or tried to end the process; the message says
    which, in one line."""


class _Exit(BaseException):
    def __init__(self, how: str) -> None:
        super().__init__(how)
        self.how = how


_depth = [0]
_PR_SET_CHILD_SUBREAPER = 36


_libc: list[Any] = []


def _subreaper(on: bool) -> None:
    """Keep orphans of our children as our children (Linux), so they can be found."""
    try:
        if not _libc:
            import ctypes

            _libc.append(ctypes.CDLL(None, use_errno=True))
        _libc[0].prctl(_PR_SET_CHILD_SUBREAPER, int(on), 0, 0, 0)
    except (OSError, AttributeError):
        pass


def _children() -> dict[int, int]:
    """{pid: parent pid} of every descendant of this process (Linux: from /proc; each
    task's `children` file where the kernel has it, else a scan of every process)."""
    me = os.getpid()
    if not os.path.exists(f"/proc/{me}/task/{me}/children"):
        return _scanned(me)
    mine: dict[int, int] = {}
    frontier = [me]
    while frontier:
        parent = frontier.pop()
        try:
            tasks = os.listdir(f"/proc/{parent}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{parent}/task/{task}/children", "rb") as handle:
                    found = [int(pid) for pid in handle.read().split()]
            except (OSError, ValueError):
                continue
            for pid in found:
                if pid not in mine:
                    mine[pid] = parent
                    frontier.append(pid)
    return mine


def _scanned(me: int) -> dict[int, int]:
    parents: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return {}
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                parents[int(entry)] = int(handle.read().rsplit(b")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
    mine: dict[int, int] = {}
    frontier = {me}
    while frontier:
        found = {pid: ppid for pid, ppid in parents.items() if ppid in frontier and pid not in mine}
        mine.update(found)
        frontier = set(found)
    return mine


def _kill_new(before: dict[int, int]) -> None:
    """Kill every descendant not in `before`, and reap those that are our children."""
    me = os.getpid()
    for _ in range(3):  # a process may start another as it is being killed
        new = {pid: ppid for pid, ppid in _children().items() if pid not in before}
        if not new:
            return
        for pid in new:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid, ppid in new.items():
            if ppid == me:
                try:
                    os.waitpid(pid, 0)
                except (ChildProcessError, OSError):
                    pass


def _exit_text(code: Any) -> str:
    return "" if code is None else safe_text(code, 60)


@contextmanager
def bounded(seconds: float, what: str) -> Iterator[None]:
    """Run the block's untrusted code in this process, bounded: see the module docstring.
    `what` names the code in messages ("the code of step 'Train'"). Nested blocks run
    under the outermost one's limit."""
    if _depth[0]:
        _depth[0] += 1
        try:
            yield
        finally:
            _depth[0] -= 1
        return
    linux = sys.platform.startswith("linux") and os.path.isdir("/proc")
    before = _children() if linux else {}
    real_exit, real_abort = os._exit, os.abort

    me = os.getpid()

    def fake_exit(code: int = 0, *rest: Any) -> None:
        if os.getpid() != me:  # a copy made by os.fork(): it may end as it likes
            real_exit(code)
        raise _Exit(f"called os._exit({_exit_text(code)})")

    def fake_abort() -> None:
        raise _Exit("called os.abort()")

    _depth[0] = 1
    alarmed = False
    previous = signal.getsignal(signal.SIGALRM) if can_alarm() else None
    try:
        if linux:
            _subreaper(True)
        os._exit, os.abort = fake_exit, fake_abort  # type: ignore[assignment]
        alarmed = arm(seconds, again=0.1)
        try:
            yield
        finally:
            if alarmed:
                disarm()
            os._exit, os.abort = real_exit, real_abort
    except TimeLimit:
        raise Escaped(f"{what} ran for more than {seconds:g} s") from None
    except SystemExit as done:
        code = _exit_text(done.code)
        raise Escaped(f"{what} tried to end the program (SystemExit"
                      f"{f' {code}' if code else ''})") from None
    except _Exit as done:
        raise Escaped(f"{what} {done.how}") from None
    except (KeyboardInterrupt, Exception):
        raise
    except BaseException as error:  # GeneratorExit and the like, raised by the code itself
        raise Escaped(f"{what} raised {error_text(error)}") from None
    finally:
        _depth[0] = 0
        if alarmed:
            disarm()
            if previous is not None:
                signal.signal(signal.SIGALRM, previous)
        if linux:
            _kill_new(before)
            _subreaper(False)
