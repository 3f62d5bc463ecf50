"""A throwaway PostgreSQL server for the test session (initdb + pg_ctl in a temp dir).

fsync is off and the server listens on a unix socket only; as root, the server runs as
the `postgres` user through runuser, since PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


def _pg_bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries not found: the README test command installs them "
            "(apt-get install postgresql), or set PARCOURS_TEST_POSTGRES_URL to a server."
        )
    return Path(candidates[-1]).parent


@dataclass
class PostgresServer:
    base_dir: Path
    bin_dir: Path
    as_postgres: bool

    @property
    def socket_dir(self) -> Path:
        return self.base_dir

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, text=True)

    @classmethod
    def start(cls) -> PostgresServer:
        as_postgres = os.geteuid() == 0
        base = Path(tempfile.mkdtemp(prefix="parcours-pg-"))
        if as_postgres:
            shutil.chown(base, "postgres", "postgres")
        server = cls(base, _pg_bin_dir(), as_postgres)
        data = base / "data"
        server._run(
            "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        options = (
            f"-k {base} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=200"
        )
        server._run(
            "pg_ctl", "-D", str(data), "-o", options, "-l", str(base / "log"), "-w", "start"
        )
        return server

    def stop(self) -> None:
        try:
            self._run("pg_ctl", "-D", str(self.base_dir / "data"), "-m", "immediate", "stop")
        finally:
            # Hundreds of test databases take tens of seconds to delete: let that happen
            # after the session ends instead of holding up its result.
            subprocess.run(
                ["sh", "-c", 'rm -rf "$1" >/dev/null 2>&1 &', "sh", str(self.base_dir)],
                check=False,
            )
