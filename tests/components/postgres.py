"""A throw-away PostgreSQL cluster (Debian's server programs)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import Any

from components.process import HOST, ChildProcess, missing_component


def child_pids(parent: int) -> list[int]:
    """The ids of the processes whose parent is ``parent`` (from ``/proc/<pid>/stat``)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended meanwhile
            continue
        if fields and int(fields[1]) == parent:
            children.append(int(stat.parent.name))
    return children


def postgres_bin(program: str) -> str:
    """Path of a PostgreSQL server program (Debian keeps them out of PATH)."""
    found = shutil.which(program)
    if found is not None:
        return found
    candidates = sorted(
        Path("/usr/lib/postgresql").glob(f"*/bin/{program}"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    if not candidates:
        missing_component("PostgreSQL server", "apt-get install -y postgresql")
    return str(candidates[-1])


class PostgresServer(ChildProcess):
    """A throw-away PostgreSQL cluster in a temporary directory, trust auth on 127.0.0.1 only.

    As root it runs as the ``postgres`` user (PostgreSQL refuses root). ``url`` is for SQLAlchemy
    with asyncpg, ``dsn`` for libpq tools. :meth:`stop` keeps the data; :meth:`cleanup` deletes it.
    """

    name = "postgres"
    ready_text = "database system is ready to accept connections"
    stop_signal = signal.SIGINT  # "fast" shutdown; SIGTERM would wait for clients to disconnect

    def __init__(self, port: int | None = None, *, database: str = "app") -> None:
        super().__init__(port)
        self.database = database
        self.directory: Path | None = None  # created by the first start()
        self._as_postgres = os.geteuid() == 0

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@{HOST}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{self.database}"

    def popen_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {"cwd": self.directory}
        if self._as_postgres:
            options.update(user="postgres", group="postgres", extra_groups=[])
        return options

    def command(self) -> list[str]:
        assert self.directory is not None
        return [
            postgres_bin("postgres"),
            *("-D", str(self.directory / "data"), "-F"),
            *("-h", HOST, "-p", str(self.port), "-k", str(self.directory)),
        ]

    def start(self) -> None:
        first_start = self.directory is None
        if first_start:
            self._initdb()
        super().start()
        if first_start:
            self.psql(f'CREATE DATABASE "{self.database}"', database="postgres")

    def _initdb(self) -> None:
        initdb = postgres_bin("initdb")
        self.directory = Path(tempfile.mkdtemp(prefix="e2e-postgres-"))
        if self._as_postgres:
            shutil.chown(self.directory, "postgres", "postgres")
        command = [
            initdb,
            *("-D", str(self.directory / "data"), "-U", "postgres", "--auth=trust"),
            *("--no-sync", "--no-locale", "--encoding=UTF8"),
        ]
        subprocess.run(command, check=True, capture_output=True, **self.popen_options())

    def psql(self, sql: str, database: str | None = None) -> str:
        """Run ``sql`` with ``psql`` and return its unaligned, tuples-only output."""
        dsn = f"postgresql://postgres@{HOST}:{self.port}/{database or self.database}"
        result = subprocess.run(
            [postgres_bin("psql"), dsn, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            check=True,
            capture_output=True,
            text=True,
        )
        return result.stdout.strip()

    def _signal(self, signum: signal.Signals) -> None:
        """Signal the postmaster and its children: the backends serve open connections by
        themselves, so :meth:`pause` must freeze them too for the server to hang."""
        super()._signal(signum)
        assert self._process is not None
        for pid in child_pids(self._process.pid):
            with contextlib.suppress(ProcessLookupError):  # a backend that just exited
                os.kill(pid, signum)

    def stop(self) -> None:
        if self.running:
            self.resume()  # paused backends would keep the postmaster from shutting down
        super().stop()

    def cleanup(self) -> None:
        """Stop the server and delete its data directory."""
        self.stop()
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)
            self.directory = None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.cleanup()
