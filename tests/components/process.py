"""Child processes on 127.0.0.1 with a log file each, and what every component shares.

A component that is not installed skips the test (or fails it when ``CI=true``), see
:func:`missing_component`.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, NoReturn, Self

import pytest

HOST = "127.0.0.1"
TESTS_DIR = Path(__file__).resolve().parents[1]
ARTIFACTS_DIR = TESTS_DIR / "artifacts"

START_TIMEOUT = 30.0  # generous: a loaded CI machine starts Python slowly (15 s was missed)
STOP_TIMEOUT = 5.0


def missing_component(name: str, how_to_install: str) -> NoReturn:
    """Skip the test because ``name`` is not installed; fail it instead when ``CI=true``."""
    message = f"{name} is not available; install it with: {how_to_install}"
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until true; after ``timeout`` s raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


class ChildProcess:
    """A server process on 127.0.0.1 with its output in a log file; start/stop may repeat.

    Subclasses define ``name``, :meth:`command` and ``ready_text``, printed once it serves.
    """

    name = "process"
    ready_text = ""
    stop_signal = signal.SIGTERM

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.log_path = ARTIFACTS_DIR / f"{self.name}-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def popen_options(self) -> dict[str, Any]:
        """Extra ``subprocess.Popen`` arguments (environment, user, working directory)."""
        return {}

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process and wait until it prints ``ready_text``; stop it again on failure."""
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already started")
        command = self.command()  # may skip the test: before anything needs cleaning up
        ARTIFACTS_DIR.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        log_offset = self._log.tell()
        self._process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            **self.popen_options(),
        )
        try:
            wait_for(lambda: self._is_ready(log_offset), START_TIMEOUT, f"{self.name} to start")
        except BaseException:
            self.stop()
            raise

    def _is_ready(self, log_offset: int) -> bool:
        if not self.running:
            raise RuntimeError(f"{self.name} exited during start-up, see {self.log_path}")
        with self.log_path.open("rb") as log:
            log.seek(log_offset)
            return self.ready_text.encode() in log.read()

    def stop(self) -> None:
        """Stop the process (SIGKILL if it does not end in time) and close its log. Idempotent."""
        process, self._process = self._process, None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGCONT)  # a paused process would not handle the signal
                process.send_signal(self.stop_signal)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def pause(self) -> None:
        """Freeze the process (SIGSTOP): the kernel accepts connections, nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Undo :meth:`pause`."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: signal.Signals) -> None:
        if self._process is None or not self.running:
            raise RuntimeError(f"{self.name} is not running")
        self._process.send_signal(signum)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
