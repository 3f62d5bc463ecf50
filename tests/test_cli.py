"""The command line as an operator uses it: real processes for what only they show
(start-up, the entry point's exit codes and messages, `init`, `serve`), in-process runs
answering the same for the rest."""

import contextlib
import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from rich.console import Console, ConsoleDimensions
from typer.testing import CliRunner

from parcours.core.clock import ManualClock
from parcours.core.commandline import CliState
from parcours.core.db import Database
from parcours.core.errors import InvalidInput
from tests import builders


def parcours(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARCOURS_")}
    environment.update({"PARCOURS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "parcours", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        input=input,
        timeout=120,
    )


def parcours_in_process(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`parcours` run in this process in `tmp_path` on `db`, answering what `parcours` run
    as a process answers (exit code, stdout, stderr; expected failures explained as `main`
    does) without paying Python's start-up and `parcours init` at each call. Use
    `parcours` for what only a real process shows."""
    from parcours import cli

    monkeypatch.setattr(CliState, "_db", db)
    for name in [name for name in os.environ if name.startswith("PARCOURS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("PARCOURS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    # A console keeps the COLUMNS of when its module was imported (80 in an xdist worker):
    # give every console the 200 columns that `parcours` above gives a real process.
    monkeypatch.setattr(Console, "size", property(lambda _: ConsoleDimensions(200, 25)))

    def run(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = CliRunner().invoke(cli.app, list(args), input=input, env={"COLUMNS": "200"})
        code, stderr = result.exit_code, result.stderr
        failure = result.exception  # SystemExit (a BaseException) when it exited itself
        if isinstance(failure, Exception):
            explained = io.StringIO()
            with contextlib.redirect_stderr(explained):
                known = cli._explained(failure)
            if known is None:
                raise failure
            code, stderr = known, stderr + explained.getvalue()
        return subprocess.CompletedProcess(["parcours", *args], code, result.stdout, stderr)

    return run


def test_version(tmp_path: Path) -> None:
    result = parcours(tmp_path, "--version")
    assert result.returncode == 0
    assert result.stdout.startswith("parcours ")


def test_an_unknown_option_is_named(tmp_path: Path) -> None:
    result = parcours(tmp_path, "init", "--colour")
    assert result.returncode == 2
    assert "No such option: --colour" in result.stderr


def test_a_bad_setting_stops_start_up_and_names_the_variable(tmp_path: Path) -> None:
    result = parcours(tmp_path, "init", env={"PARCOURS_PORT": "huit"})
    assert result.returncode == 2
    assert "PARCOURS_PORT='huit'" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_gets_a_clear_message(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://shop:pw@/nowhere?host={tmp_path}"
    result = parcours(tmp_path, "init", env={"PARCOURS_DATABASE_URL": url})
    assert result.returncode == 3
    assert "Database unavailable" in result.stderr
    assert "PARCOURS_DATABASE_URL" in result.stderr
    assert "pw@" not in result.stderr
    assert "Traceback" not in result.stderr


def test_commands_other_than_init_ask_for_init_first(tmp_path: Path) -> None:
    result = parcours(tmp_path, "keys", "list")
    assert result.returncode == 1
    assert "run `parcours init`" in result.stderr


def test_init_twice_migrates_then_finds_the_schema_up_to_date(tmp_path: Path) -> None:
    assert "migrated from empty" in parcours(tmp_path, "init").stdout
    assert "already up to date" in parcours(tmp_path, "init").stdout


def test_keys_and_users_are_managed_from_the_command_line(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    created = cli("keys", "create", "--name", "POS Lyon", "--scope", "commerce:write")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip().splitlines()[-1]
    assert secret.startswith("sk_")
    listed = cli("keys", "list")
    prefix = "_".join(secret.split("_")[:2])
    assert prefix in listed.stdout
    assert secret not in listed.stdout
    assert cli("keys", "revoke", prefix).returncode == 0
    bad = cli("keys", "create", "--name", "x", "--scope", "everything")
    assert bad.returncode == 1
    assert "unknown scope" in bad.stderr

    user = cli("users", "create", "lea", "--role", "marketer", "--password", "long enough pw")
    assert user.returncode == 0, user.stderr
    prompted = cli(
        "users", "create", "hugo", "--role", "staff", "--store", "LYO-1",
        input="another long pw\nanother long pw\n",
    )  # fmt: skip
    assert prompted.returncode == 0, prompted.stderr
    listing = cli("users", "list").stdout
    assert "lea" in listing
    assert "LYO-1" in listing
    duplicate = cli("users", "create", "LEA", "--password", "long enough pw")
    assert duplicate.returncode == 1
    assert "taken" in duplicate.stderr
    changed = cli("users", "set-password", "lea", "--password", "a new long password")
    assert changed.returncode == 0


def test_the_worker_reports_its_consumers(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    assert cli("worker", "--once").returncode == 0
    status = cli("worker", "--status")
    assert status.returncode == 0
    assert "identity@events" in status.stdout  # the tracking log's readers too


def test_serve_with_processes_refuses_in_process_consumers(tmp_path: Path) -> None:
    from parcours.cli import app

    refused = CliRunner().invoke(app, ["serve", "--processes", "2", "--worker"])
    assert isinstance(refused.exception, InvalidInput)  # `parcours` prints it, exit 1
    assert "run `parcours worker` alongside" in refused.exception.detail


def test_serve_runs_several_processes_on_one_port(tmp_path: Path, sqlite_template: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(sqlite_template, data / "parcours.db")
    db = Database.connect(f"sqlite:///{data / 'parcours.db'}")
    key = builders.api_key(db, ManualClock(builders.utc(2026, 3, 14, 9, 0)), kind="write")
    db.dispose()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARCOURS_")}
    environment["PARCOURS_DATA_DIR"] = str(data)
    command = [sys.executable, "-m", "parcours", "serve", "--processes", "2", "--port", str(port)]
    server = subprocess.Popen(
        command, env=environment, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 150  # two processes importing the app, on a busy CI
        while True:
            assert server.poll() is None, server.communicate()[1]
            try:
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        # A new connection per request: either process may answer; the log is shared.
        for n in range(6):
            event = {"anonymousId": f"a-{n}", "event": "Viewed", "messageId": f"m-{n}"}
            answer = httpx.post(f"{url}/v1/track", json=event, auth=(key, ""))
            assert answer.json()["stored"] == 1, answer.text
        page = httpx.post(f"{url}/v1/track", json=event, auth=(key, "")).json()
        assert (page["stored"], page["duplicates"]) == (0, 1)
    finally:
        server.terminate()
        _, errors = server.communicate(timeout=30)
    assert "2 processes" in errors
    assert "Traceback" not in errors


@pytest.mark.parametrize("size", ["huge"])
def test_demo_generate_refuses_unknown_sizes(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: str
) -> None:
    cli = parcours_in_process(sqlite_db, tmp_path, monkeypatch)
    result = cli("demo", "generate", "--size", size)
    assert result.returncode == 2
    assert "--size" in result.stderr


HEAVY = ("ibis", "pandas", "numpy", "scipy", "duckdb", "pyarrow", "pyspark", "splink", "sklearn")
HEAVY_LOADED = f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))"


def test_starting_the_command_line_imports_no_data_library(tmp_path: Path) -> None:
    """Every command, `--version` included, pays for what `parcours.cli` imports: the
    context groups are loaded when run, and their commands import Ibis, pandas, numpy…
    only when they compute."""
    started = subprocess.run(
        [sys.executable, "-c", f"import parcours.cli, sys; {HEAVY_LOADED}"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert started.stdout.strip() == "[]"
    analytics_help = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from parcours.cli import app; sys.argv = ['parcours', 'analytics', "
            f"'--help']\ntry:\n    app()\nexcept SystemExit:\n    {HEAVY_LOADED}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=True,
    )
    assert analytics_help.stdout.strip().splitlines()[-1] == "[]"


def test_the_help_listing_shows_each_groups_own_help() -> None:
    """`parcours --help` lists the groups without loading them: what it shows of each is
    the help the group itself declares."""
    import typer

    from parcours.cli import _GROUPS, app

    root = typer.main.get_command(app)
    context = typer.Context(root)
    for name, (listed, _) in _GROUPS.items():
        group = root.get_command(context, name)  # type: ignore[attr-defined]
        assert group.help == listed, name
