"""Test support: runs the real strata-router and strata-cachenode binaries (the Python side of
tests/node_process.h).

ServerProcess starts a binary with given flags, reads its stdout until it prints
"PROGRAM serving on HOST:PORT" (bounded reads, no sleeps) and hands back the address; stderr goes
to a file the test can show on failure. Children get SIGKILL when the test process dies (Linux
parent-death signal), so a crashed test leaves no server holding a port. Not thread-safe; one test
thread drives each object.
"""

from __future__ import annotations

import ctypes
import functools
import os
import re
import selectors
import signal
import socket
import subprocess
import tempfile
import threading
import time
from typing import Callable, Optional, Sequence

_SERVING = re.compile(r"^(strata-router|strata-cachenode) serving on (\S+)")
_PR_SET_PDEATHSIG = 1


def router_binary() -> str:
    return os.environ.get("STRATA_ROUTER_BIN", "build/bin/strata-router")


def cachenode_binary() -> str:
    return os.environ.get("STRATA_CACHENODE_BIN", "build/bin/strata-cachenode")


@functools.lru_cache(maxsize=None)
def help_text(binary: str) -> str:
    """What `binary --help` prints (stdout and stderr)."""
    r = subprocess.run(
        [binary, "--help"], stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60
    )
    return r.stdout + r.stderr


def knows_flag(binary: str, flag: str) -> bool:
    """Whether `binary --help` lists `flag` (e.g. "--plaintext")."""
    return re.search(re.escape(flag) + r"(?![\w-])", help_text(binary)) is not None


def plaintext_flags(binary: str) -> list[str]:
    """["--plaintext"] when the binary needs it to serve without TLS, else []."""
    return ["--plaintext"] if knows_flag(binary, "--plaintext") else []


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def eventually(done: Callable[[], bool], patience_s: float = 30.0) -> bool:
    """Polls `done` until it is true or `patience_s` passed (what an operator would do: ask the
    server again), with a short pause between polls so a busy box is not hammered."""
    deadline = time.monotonic() + patience_s
    while True:
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ServerProcess:
    """One running strata-router or strata-cachenode."""

    def __init__(self, binary: str) -> None:
        self.binary = binary
        self.name = os.path.basename(binary)
        self.address: Optional[str] = None
        self._proc: Optional[subprocess.Popen] = None
        self._stderr = tempfile.NamedTemporaryFile(prefix="strata-py-stderr-", delete=False)
        self._drain: Optional[threading.Thread] = None

    def start(
        self, flags: Sequence[str], env: Optional[dict] = None, startup_timeout_s: float = 60.0
    ) -> str:
        """Starts the binary with `flags` (adding --listen 127.0.0.1:0 unless given) and returns
        "HOST:PORT" once it serves. RuntimeError with its last stderr line if it exits first or
        does not serve within `startup_timeout_s` (then it is killed)."""
        argv = [self.binary, *flags]
        if not any(f.startswith("--listen") for f in flags):
            argv += ["--listen", "127.0.0.1:0"]
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=env,
            preexec_fn=_die_with_parent,
        )
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + startup_timeout_s
        pending = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(timeout=left):
                    self.kill()
                    raise RuntimeError(
                        f"{self.name} did not serve within {startup_timeout_s}s; "
                        f"stderr: {self.last_stderr_line()}"
                    )
                data = os.read(fd, 4096)
                if not data:
                    code = self._proc.wait(timeout=30)
                    self._proc.stdout.close()
                    self._proc = None
                    raise RuntimeError(
                        f"{self.name} exited with code {code} before serving: "
                        f"{self.last_stderr_line()}"
                    )
                pending += data
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    m = _SERVING.match(line.decode("utf-8", "replace"))
                    if m and m.group(1) == self.name:
                        self.address = m.group(2)
                        # Keep reading stdout so a chatty server never blocks on a full pipe.
                        stream = self._proc.stdout
                        self._drain = threading.Thread(
                            target=lambda: stream.read(), daemon=True
                        )
                        self._drain.start()
                        return self.address

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def stderr_text(self) -> str:
        with open(self._stderr.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def last_stderr_line(self) -> str:
        lines = self.stderr_text().strip().splitlines()
        return lines[-1] if lines else "(no stderr output)"

    def terminate(self, timeout_s: float = 30.0) -> Optional[int]:
        """SIGTERM, then waits (SIGKILL after `timeout_s`). Returns the exit code."""
        return self._stop(signal.SIGTERM, timeout_s)

    def kill(self) -> Optional[int]:
        return self._stop(signal.SIGKILL, 30.0)

    def _stop(self, sig: int, timeout_s: float) -> Optional[int]:
        if self._proc is None:
            return None
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._drain is not None:
            self._drain.join(timeout=10)
        proc.stdout.close()
        return proc.returncode

    def close(self) -> None:
        """Kills the server if still running and removes its stderr file."""
        self.kill()
        self._stderr.close()
        try:
            os.unlink(self._stderr.name)
        except FileNotFoundError:
            pass
