"""``rarebird setup auditd|systemd``: the files written, nothing loaded without consent, the unit
accepted by ``systemd-analyze verify`` and the rules by the kernel (root, kernel audit only)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXPECTED_RULES = [
    "-a always,exit -F arch=b64 -S execve,execveat -k rarebird_exec",
    "-a always,exit -F arch=b32 -S execve,execveat -k rarebird_exec",
]


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, input=stdin, check=False)  # fmt: skip


def rule_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line and not line.startswith("#")]


def test_dry_run_prints_the_rules_and_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "rules.d" / "rarebird.rules"
    proc = run("setup", "auditd", "--rules-file", str(target), "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert rule_lines(proc.stdout) == EXPECTED_RULES
    assert not target.exists()


def test_rules_are_written_and_not_loaded_without_consent(tmp_path: Path) -> None:
    target = tmp_path / "rules.d" / "rarebird.rules"
    proc = run("setup", "auditd", "--rules-file", str(target), "--key", "rb", stdin="y\n")
    assert proc.returncode == 0, proc.stderr
    # standard input is not a terminal: no question asked, nothing loaded
    assert proc.stderr == (f"{target}: written\n"
                           "not loaded; to load them: augenrules --load (or restart auditd)\n")  # fmt: skip
    assert rule_lines(target.read_text()) == [
        r.replace("rarebird_exec", "rb") for r in EXPECTED_RULES
    ]
    assert oct(target.stat().st_mode & 0o777) == "0o640"
    again = run("setup", "auditd", "--rules-file", str(target), "--key", "rb", "--no-load")
    assert again.stderr.splitlines()[0] == f"{target}: unchanged"


def test_an_unwritable_place_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run("setup", "auditd", "--rules-file", str(blocker / "rarebird.rules"), "--no-load")
    assert proc.returncode == 1
    assert proc.stderr.startswith(f"rarebird: error: {blocker / 'rarebird.rules'}: cannot write: ")


def test_the_unit_is_sandboxed_and_systemd_accepts_it(tmp_path: Path) -> None:
    unit = tmp_path / "rarebird.service"
    store = tmp_path / "state" / "rarebird.db"
    proc = run("setup", "systemd", "--unit-file", str(unit), "--store", str(store),
               "--config", "/etc/rarebird/rarebird.toml")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        f"{unit}: written", "next: systemctl daemon-reload && systemctl enable --now rarebird.service"]  # fmt: skip
    text = unit.read_text()
    lines = text.splitlines()
    for setting in ("NoNewPrivileges=yes", "ProtectSystem=strict", f"ReadWritePaths={store.parent}",
                    "CapabilityBoundingSet=", "PrivateTmp=yes", "SystemCallFilter=@system-service",
                    f"Environment=RAREBIRD_STORE={store}", "User=rarebird"):  # fmt: skip
        assert setting in lines, setting
    assert (
        f"ExecStart={sys.executable} -m rarebird serve --config /etc/rarebird/rarebird.toml"
        in lines
    )
    expected_home = "read-only" if sys.executable.startswith(("/home/", "/root/")) else "yes"
    assert f"ProtectHome={expected_home}" in lines
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed (Debian package systemd)")
    check = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                           check=False)  # fmt: skip
    # verify exits 0 on settings it ignores, but names them: nothing may be said
    assert (check.returncode, check.stdout, check.stderr) == (0, "", "")


@pytest.mark.root
def test_the_kernel_accepts_the_rules(tmp_path: Path) -> None:
    """Root and kernel audit only (as tests/test_kernel_audit.py): the written file loaded with
    ``auditctl -R``, listed back by ``auditctl -l``, then removed again."""
    auditctl = shutil.which("auditctl") or shutil.which("auditctl", path="/usr/sbin:/sbin")
    if os.geteuid() != 0 or auditctl is None:
        pytest.skip("needs root and auditctl (Debian package auditd)")
    status = subprocess.run([auditctl, "-s"], capture_output=True, text=True, check=False)
    if status.returncode != 0:
        pytest.skip(f"the kernel refuses audit requests here: {status.stderr.strip()}")
    if "enabled 2" in status.stdout:
        pytest.skip("the audit configuration is locked (enabled 2)")
    target = tmp_path / "rarebird.rules"
    key = "rarebird-setup-test"
    assert (
        run("setup", "auditd", "--rules-file", str(target), "--key", key, "--no-load").returncode
        == 0
    )
    loaded = subprocess.run([auditctl, "-R", str(target)], capture_output=True, text=True,
                            check=False)  # fmt: skip
    try:
        assert loaded.returncode == 0, loaded.stderr
        listed = subprocess.run([auditctl, "-l", "-k", key], capture_output=True, text=True,
                                check=True).stdout  # fmt: skip
        ours = [line for line in listed.splitlines() if f"key={key}" in line]
        assert len(ours) == 2, listed
        assert sorted("arch=b64" in line for line in ours) == [False, True]  # one per ABI
        assert all("-S execve,execveat" in line for line in ours), ours
    finally:
        for line in rule_lines(target.read_text()):
            subprocess.run([auditctl, *line.replace("-a ", "-d ", 1).split()],
                           capture_output=True, check=False)  # fmt: skip
