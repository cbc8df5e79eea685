"""Every command the README and docs/ show is run, in order, in a fresh folder, so the docs
cannot drift from the program.

The fenced ``sh`` blocks of README.md and docs/*.md are read line by line: ``export`` lines set
the environment, ``rarebird`` lines are run with ``python -m rarebird`` and must exit 0. What a
reader fills in is filled from real output: ``ALERT_ID`` is the id of the highest-scoring alert
the documented ``detect`` made. What a test may not do to this machine is redirected:
``/var/log/audit/`` is a folder of generated raw auditd logs, ``setup`` writes into the test's
folder and loads nothing, and ``serve`` runs until it is live, then gets SIGTERM (and must exit
0).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: documents whose commands need a system no test has: docs/ELASTIC.md is run against the
#: reader's own Elasticsearch cluster (its commands are exercised against a recorded stand-in
#: in tests/test_elasticsearch_*.py instead)
NEEDS_A_CLUSTER = {"ELASTIC.md"}
DOCS = [ROOT / "README.md",
        *sorted(p for p in (ROOT / "docs").glob("*.md") if p.name not in NEEDS_A_CLUSTER)]  # fmt: skip
FENCE = re.compile(r"^```sh\n(.*?)^```", re.M | re.S)


def shell_lines(path: Path) -> list[str]:
    out = []
    for block in FENCE.findall(path.read_text(encoding="utf-8")):
        out.extend(
            line for line in block.splitlines() if line.strip() and not line.strip().startswith("#")
        )
    return out


def documented() -> list[tuple[str, str]]:
    # 'make run' / 'make test' are what CI itself runs; every other line is rarebird's
    return [(path.name, line) for path in DOCS for line in shell_lines(path)
            if not line.startswith("make ")]  # fmt: skip


class Session:
    """A reader following the docs in one folder, with one environment."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("RAREBIRD_")}
        self.env["PYTHONPATH"] = str(ROOT / "src") + os.pathsep + self.env.get("PYTHONPATH", "")
        self.alert_id: str | None = None
        self.ran: list[str] = []

    def rarebird(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "rarebird", *args], cwd=self.work,
                              env=self.env, capture_output=True, text=True, check=False,
                              timeout=timeout)  # fmt: skip

    def fill(self, args: list[str]) -> list[str]:
        if "ALERT_ID" in args:
            if self.alert_id is None:
                proc = self.rarebird("alerts", "list", "--sort", "score", "--format", "json")
                assert proc.returncode == 0, proc.stderr
                alerts = json.loads(proc.stdout)
                assert alerts, "the documented detect made no alert"
                self.alert_id = alerts[0]["kibana.alert.uuid"]
            args = [self.alert_id if a == "ALERT_ID" else a for a in args]
        args = [str(self.work / "audit-logs") if a == "/var/log/audit/" else a for a in args]
        if args[:2] == ["setup", "auditd"]:
            assert "--load" not in args
            args += ["--rules-file", str(self.work / "rules.d" / "rarebird.rules"), "--no-load"]
        if args[:2] == ["setup", "systemd"]:
            args += ["--unit-file", str(self.work / "rarebird.service")]
        return args

    def run_line(self, where: str, line: str) -> None:
        words = shlex.split(line, comments=True)
        while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):  # VAR=value rarebird ...
            name, _, value = words.pop(0).partition("=")
            self.env[name] = value if value != "..." else "a-token-of-at-least-16-characters"
        if words[0] == "export":
            name, _, value = words[1].partition("=")
            self.env[name] = value
            return
        assert words[0] == "rarebird", f"{where}: {line}"
        args = self.fill(words[1:])
        self.ran.append(" ".join(words[:3]))
        if args[0] == "serve":
            self.serve(args)
            return
        if args[0] == "ui":
            self.ui(args)
            return
        proc = self.rarebird(*args)
        assert proc.returncode == 0, f"{where}: {line}\n{proc.stdout}\n{proc.stderr}"

    def ui(self, args: list[str]) -> None:
        """The pages start, print where they are, and answer; then SIGTERM stops them."""
        if "--port" not in args:
            args = [*args, "--port", "0"]
        if "--host" in args:
            args[args.index("--host") + 1] = "127.0.0.1"  # tests stay on loopback
        log = self.work / "ui.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen([sys.executable, "-m", "rarebird", *args], cwd=self.work,
                                    env=self.env, stdout=out, stderr=subprocess.STDOUT)  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while not re.search(rb"http://127\.0\.0\.1:\d+/", log.read_bytes()):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

    def serve(self, args: list[str]) -> None:
        log = self.work / "serve.log"
        with open(log, "wb") as err:
            proc = subprocess.Popen([sys.executable, "-m", "rarebird", *args], cwd=self.work,
                                    env=self.env, stdout=subprocess.DEVNULL, stderr=err)  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while b'"event":"live"' not in log.read_bytes():
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
        assert code == 0, log.read_text()


@pytest.mark.slow
def test_every_documented_command_runs(tmp_path: Path) -> None:
    lines = documented()
    assert len(lines) >= 25
    session = Session(tmp_path)
    (tmp_path / "admins.txt").write_text("alice\nbob\n")
    (tmp_path / "audit-logs").mkdir()
    made = session.rarebird("generate", "--days", "3", "--format", "auditd",
                            "--file", str(tmp_path / "audit-logs" / "audit.log"))  # fmt: skip
    assert made.returncode == 0, made.stderr
    for where, line in lines:
        session.run_line(where, line)
    # what the docs promise the reader sees
    demo = session.rarebird("results", "--min-score", "25")
    assert "www-data" in demo.stdout
    hint = re.search(r"\(explain one: (rarebird triage [^)]+)\)", demo.stderr)
    assert hint is not None, demo.stderr
    pasted = session.rarebird(*shlex.split(hint.group(1))[1:])  # the hint, pasted, works
    assert pasted.returncode == 0, pasted.stderr
    live = session.rarebird("results", "--store", "live.db", "--format", "json", "--limit", "0")
    assert "www-data" in {
        r["by_field_value"] for r in json.loads(live.stdout)
    }  # serve modelled the sample
    assert session.rarebird("setup", "auditd", "--dry-run").stdout.count("-S execve,execveat") == 2
    assert (tmp_path / "rules.d" / "rarebird.rules").exists()
    assert "ProtectSystem=strict" in (tmp_path / "rarebird.service").read_text()
    # every command group the CLI has is shown somewhere in the docs
    shown = {" ".join(r.split()[1:2]) for r in session.ran}
    listed = set(session.rarebird("--help").stdout.split("Commands:")[1].split()[::1])
    for group in ("alerts", "detect", "exceptions", "generate", "job", "results", "rule", "serve",
                  "setup", "snapshots", "status", "triage", "ui", "value-lists"):  # fmt: skip
        assert group in listed
        assert group in shown, f"no documented example of 'rarebird {group}'"


def test_the_makefile_hint_works_and_says_two_weeks() -> None:
    text = (ROOT / "Makefile").read_text()
    assert "a week" not in text
    assert "--days 14" in text
    assert "--file $(DEMO)/fleet.ndjson" in text


def test_shell_completion_as_documented(tmp_path: Path) -> None:
    deploy = (ROOT / "docs" / "DEPLOY.md").read_text()
    assert 'eval "$(_RAREBIRD_COMPLETE=bash_source rarebird)"' in deploy
    # the installed script is 'rarebird': what it runs, under that name
    entry = [sys.executable, "-c", "from rarebird.cli import main; main(prog_name='rarebird')"]
    env = {**os.environ, "_RAREBIRD_COMPLETE": "bash_source"}
    script = subprocess.run(entry, env=env, capture_output=True, text=True, check=False)
    assert "complete -o nosort -F _rarebird_completion rarebird" in script.stdout
    env = {**os.environ, "_RAREBIRD_COMPLETE": "bash_complete", "COMP_WORDS": "rarebird ale",
           "COMP_CWORD": "1"}  # fmt: skip
    words = subprocess.run(entry, env=env, capture_output=True, text=True, check=False)
    assert words.stdout.split() == ["plain,alerts"]
    env["COMP_WORDS"], env["COMP_CWORD"] = "rarebird alerts list --format ", "4"
    words = subprocess.run(entry, env=env, capture_output=True, text=True, check=False)
    assert words.stdout.split() == ["plain,table", "plain,json", "plain,ndjson", "plain,csv"]
