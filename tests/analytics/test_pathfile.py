"""The common path file: parsing, bad files reported by line and column, and the
`parcours analytics attribution` command that reads it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from parcours.analytics.attribution import Paths
from parcours.analytics.pathfile import _read_checked, _read_fast, read_paths, write_paths
from parcours.cli import app
from parcours.core.errors import InvalidInput
from parcours.core.imports import ImportRejected

GOOD = (
    "path;total_conversions;total_conversion_value;total_null\n"
    " email > web > store visit ;2;100.5;3\n"
    "web;1;30;0\n"
    "email>email>web;1;50;4\n"
)


def test_reads_paths_trimming_touches() -> None:
    paths = read_paths(io.StringIO(GOOD))
    assert list(paths.sequences()) == [
        ("email", "web", "store visit"),
        ("web",),
        ("email", "email", "web"),
    ]
    assert paths.conversions.tolist() == [2, 1, 1]
    assert paths.value.tolist() == [100.5, 30, 50]
    assert paths.nulls.tolist() == [3, 0, 4]


def test_value_and_null_columns_are_optional() -> None:
    paths = read_paths(io.StringIO("total_conversions,path\n3,a>b\n"), sep=",")
    assert paths.conversions.tolist() == [3]
    assert paths.value.tolist() == [0]
    assert paths.nulls.tolist() == [0]


def test_round_trip_through_write_paths() -> None:
    out = io.StringIO()
    write_paths(out, read_paths(io.StringIO(GOOD)))
    again = read_paths(io.StringIO(out.getvalue()))
    assert next(iter(again.sequences())) == ("email", "web", "store visit")
    assert again.value.tolist() == [100.5, 30, 50]


def test_a_missing_column_is_named() -> None:
    with pytest.raises(InvalidInput, match="lacks the column\\(s\\) total_conversions"):
        read_paths(io.StringIO("path;conversions\na;1\n"))


def test_an_empty_file_is_refused() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        read_paths(io.StringIO(""))


@pytest.mark.parametrize(
    ("line", "column", "message"),
    [
        ("a>b;two;0;0", "total_conversions", "'two' is not a number"),
        ("a>b;1;0;-3", "total_null", "'-3' is negative"),
        ("a>b;1;nan;0", "total_conversion_value", "not a finite number"),
        (";1;0;0", "path", "empty path"),
        ("a>>b;1;0;0", "path", "empty touch"),
        ("a;0;12;0", "total_conversion_value", "value without conversions"),
    ],
)
def test_bad_rows_are_reported_with_line_and_column(line: str, column: str, message: str) -> None:
    text = "path;total_conversions;total_conversion_value;total_null\nok;1;1;1\n" + line + "\n"
    with pytest.raises(ImportRejected) as caught:
        read_paths(io.StringIO(text))
    [error] = caught.value.row_errors
    assert (error.row, error.column) == (3, column)
    assert message in error.message


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PARCOURS_")}
    environment.update({"PARCOURS_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"})
    return subprocess.run(
        [sys.executable, "-m", "parcours", "analytics", "attribution", *args],
        capture_output=True,
        text=True,
        env=environment,
        cwd=tmp_path,
        timeout=120,
    )


def test_command_writes_channel_conversions_value_csv(tmp_path: Path) -> None:
    file = tmp_path / "paths.csv"
    file.write_text(GOOD)
    runner = CliRunner()
    result = runner.invoke(app, ["analytics", "attribution", str(file), "--model", "last"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "channel,conversions,value",
        "store visit,2,100.5",
        "web,2,80",
        "email,0,0",
    ]
    markov = runner.invoke(
        app, ["analytics", "attribution", str(file), "--model", "markov", "--order", "2"]
    )
    assert markov.exit_code == 0, markov.output
    rows = [line.split(",") for line in markov.stdout.splitlines()[1:]]
    assert sum(float(r[1]) for r in rows) == pytest.approx(4)


def test_command_reports_a_bad_file_and_exits_2(tmp_path: Path) -> None:
    file = tmp_path / "paths.csv"
    file.write_text("path|total_conversions\na>b|x\n")
    result = run_cli(tmp_path, str(file), "--sep", "|")
    assert result.returncode == 2
    assert "line 2, column total_conversions: 'x' is not a number" in result.stderr
    assert result.stdout == ""


def test_command_refuses_an_unknown_model_with_exit_2(tmp_path: Path) -> None:
    file = tmp_path / "paths.csv"
    file.write_text(GOOD)
    result = run_cli(tmp_path, str(file), "--model", "u_shaped")
    assert result.returncode == 2
    assert "Unknown attribution model 'u_shaped'" in result.stderr


def same_paths(a: Paths, b: Paths) -> None:
    assert a.channels == b.channels
    for name in ("offsets", "touches", "conversions", "value", "nulls"):
        assert getattr(a, name).tolist() == getattr(b, name).tolist()


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "\ufeffPath ; Total_Conversions\r\nsocial>web;3\r\n\r\nweb ;1\r\n",
        'path;total_conversions;total_null;extra\n"a;b>c";1;0;x\nc>a;1;1;y\n',
        "path;total_conversions\n;;\nweb;1\n",
    ],
)
def test_the_fast_reader_gives_what_the_checked_parser_gives(text: str) -> None:
    # A quoted separator, odd headers, CRLF, a blank row: the fast reader reads the
    # first three; the blank row makes it step aside for the checked parser.
    checked = _read_checked(io.StringIO(text.removeprefix("\ufeff"), newline=""), ";", ">")
    same_paths(read_paths(io.BytesIO(text.encode())), checked)
    same_paths(read_paths(io.StringIO(text)), checked)


def test_a_bad_count_found_by_the_fast_reader_is_reported_by_line() -> None:
    text = "path;total_conversions;total_null\na>b;1;0\nc>a;b;1\nc;2;-1\n"
    with pytest.raises(ImportRejected) as rejected:
        read_paths(io.BytesIO(text.encode()))
    assert [(e.row, e.column) for e in rejected.value.row_errors] == [
        (3, "total_conversions"),
        (4, "total_null"),
    ]


def test_the_fast_reader_handles_a_large_file_like_the_checked_parser() -> None:
    rng = np.random.default_rng(3)
    names = ["web", "app", "email", "store visit", "call centre"]
    lines = ["path;total_conversions;total_conversion_value;total_null"]
    for _ in range(2000):
        touches = rng.choice(names, size=rng.integers(1, 6))
        conv = int(rng.integers(0, 3))
        lines.append(f"{' > '.join(touches)};{conv};{conv * 12.5};{int(rng.integers(0, 3))}")
    text = "\n".join(lines) + "\n"
    same_paths(read_paths(io.StringIO(text)), _read_checked(io.StringIO(text), ";", ">"))


TRICKY = [
    # spaces and tabs around touches, a no-break space (str.strip trims it too)
    "path;total_conversions\n  web\t>\temail  ;1\n\u00a0web > email;2\nweb>email ;0\n",
    # quoted fields, one holding the column separator, one the touch separator
    'path;total_conversions;total_conversion_value\n"web > a;b";1;2.5\n"email>web";2;"3"\n',
    # CRLF line ends and an empty trailing line
    "path;total_conversions;total_null\r\nweb > app;1;2\r\napp;0;1\r\n\r\n",
    # no final newline, unicode channel names (multi-byte UTF-8)
    "path;total_conversions\ncafé > Zürich store > 東京;1\n東京;2\nü>é>ü;3",
    # a long path, long touches, the same channel repeated
    "path;total_conversions\n" + " > ".join(["a very long channel name indeed"] * 30) + ";1\n",
    # columns in another order, counts written as floats
    "total_null;path;total_conversions\n1.0;b > a;2.0\n0;a;1\n",
]


@pytest.mark.parametrize("text", TRICKY)
def test_the_fast_reader_takes_tricky_files_and_agrees(text: str) -> None:
    raw = text.encode()
    fast = _read_fast(raw, ";", ">")
    assert fast is not None, "the fast reader should read this file itself"
    checked = _read_checked(io.StringIO(text, newline=""), ";", ">")
    same_paths(fast, checked)
    same_paths(read_paths(io.BytesIO(raw)), checked)


@pytest.mark.parametrize(
    "path",
    ["web > > email", "> web", "web >", "  ", "web >  \t > app"],
)
def test_an_empty_touch_makes_the_fast_reader_step_aside(path: str) -> None:
    raw = f"path;total_conversions\nweb;1\n{path};1\n".encode()
    assert _read_fast(raw, ";", ">") is None
    with pytest.raises(ImportRejected) as rejected:
        read_paths(io.BytesIO(raw))
    assert [(e.row, e.column) for e in rejected.value.row_errors] == [(3, "path")]


def test_a_channel_first_seen_late_in_a_large_file_is_found() -> None:
    # The fast reader looks touches up in the spellings of the first few thousand; a
    # spelling seen only later must still be found.
    lines = ["path;total_conversions"] + ["web > app;1"] * 5000 + ["app > late >web;2"]
    text = "\n".join(lines) + "\n"
    fast = _read_fast(text.encode(), ";", ">")
    assert fast is not None
    same_paths(fast, _read_checked(io.StringIO(text), ";", ">"))
    assert fast.channels == ("app", "late", "web")


def test_a_multi_character_touch_separator_is_read_the_same() -> None:
    text = "path;total_conversions\nweb -> app -> web;1\napp;2\n"
    fast = _read_fast(text.encode(), ";", "->")
    assert fast is not None
    same_paths(fast, _read_checked(io.StringIO(text), ";", "->"))
