"""A real store for the web tests: constructed events through the real ``rarebird detect``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.test_cli_job import T0, doc, history

#: the attacker-controlled strings that must come out escaped on every page
XSS_USER = "<img src=x onerror=alert(1)>"
XSS_ARG = '"><script>alert(2)</script>'
TOKEN = "test-token-0123456789abcdef"


def _hostile(minutes: float) -> str:
    d = json.loads(doc(minutes, XSS_USER, "netstat", "web-7"))
    d["process"]["args"] = ["netstat", XSS_ARG]
    return json.dumps(d)


def build_store(folder: Path) -> Path:
    """15 days of three service accounts, admins now and then, a new user (alice) on day 15 and
    the hostile user on day 16; alerts made by the real rule."""
    lines = history(16)
    day = 96 * 15  # minutes in a day
    lines += [doc(5 * day + 600, "alice", "ss", "web-1"), doc(9 * day + 610, "alice", "netstat", "web-2"),
              doc(15 * day + 300, "bob", "ss", "web-1"), doc(15 * day + 301, "bob", "netstat", "web-1"),
              _hostile(16 * day // 1 - 300), _hostile(16 * day - 299),
              doc(15 * day + 700, "alice", "route", "db-1")]  # fmt: skip
    lines.sort(key=lambda line: json.loads(line)["@timestamp"])
    events = folder / "events.ndjson"
    events.write_text("\n".join(lines) + "\n")
    store = folder / "rarebird.db"
    proc = subprocess.run(
        [sys.executable, "-m", "rarebird", "detect", "--quiet", "--store", str(store), str(events)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert XSS_USER in proc.stdout, proc.stdout
    return store


__all__ = ["T0", "TOKEN", "XSS_ARG", "XSS_USER", "build_store"]
