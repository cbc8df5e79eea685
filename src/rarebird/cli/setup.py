"""``rarebird setup auditd|systemd``: the files a host needs to run rarebird continuously (see
:mod:`rarebird.deploy`). Nothing is loaded or started without the administrator's consent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import click

from rarebird.cli._common import STORE_ENV, handle_errors, main
from rarebird.cli._output import echo
from rarebird.deploy import (
    AUDIT_KEY,
    DEFAULT_RULES_FILE,
    DEFAULT_UNIT_FILE,
    UnitOptions,
    audit_rules,
    systemd_unit,
)
from rarebird.errors import RarebirdError


@main.group()
def setup() -> None:
    """Write the audit rules and the systemd unit a host needs to run rarebird serve."""


def _write(path: str, text: str, mode: int) -> str:
    """Write ``text`` to ``path`` (folders made); say whether it was new, changed or the same."""
    target = Path(path)
    try:
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old == text:
            return "unchanged"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except OSError as exc:
        hint = " (run as root, or give another path)" if isinstance(exc, PermissionError) else ""
        raise RarebirdError(f"{path}: cannot write: {exc.strerror or exc}{hint}") from None
    return "written" if old is None else "replaced"


@setup.command("auditd")
@click.option("--rules-file", default=DEFAULT_RULES_FILE, show_default=True, metavar="PATH",
              help="Where to write the rules (augenrules reads /etc/audit/rules.d/*.rules).")  # fmt: skip
@click.option("--key", default=AUDIT_KEY, show_default=True,
              help="The audit key the rules carry (ausearch -k KEY finds their events).")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the rules; write and load nothing.")
@click.option("--load/--no-load", default=None,
              help="Load the rules into the kernel now with 'augenrules --load' "
                   "[default: ask on a terminal, otherwise no].")  # fmt: skip
@handle_errors
def setup_auditd(rules_file: str, key: str, dry_run: bool, load: bool | None) -> None:
    """Write the audit rules the datafeed needs: execve and execveat by every user, on both
    ABIs (b64 and b32), with a key, as a rules.d file; load them only when asked (--load) or
    when you say yes.

    No login-uid filter on purpose: service accounts (www-data running a web shell's commands)
    have none, and they are what the job is for.
    """
    text = audit_rules(key)
    if dry_run:
        click.echo(text, nl=False)
        return
    outcome = _write(rules_file, text, 0o640)
    echo(f"{rules_file}: {outcome}", err=True)
    if load is None:
        load = sys.stdin.isatty() and click.confirm(
            "Load the rules into the kernel now (augenrules --load)?", default=False, err=True
        )
    if not load:
        echo("not loaded; to load them: augenrules --load (or restart auditd)", err=True)
        return
    augenrules = shutil.which("augenrules") or shutil.which("augenrules", path="/usr/sbin:/sbin")
    if augenrules is None:
        raise RarebirdError("augenrules not found (Debian and Ubuntu: apt install auditd)")
    proc = subprocess.run([augenrules, "--load"], capture_output=True, text=True, check=False)
    for line in (proc.stdout + proc.stderr).splitlines():
        echo(f"augenrules: {line}", err=True)
    if proc.returncode != 0:
        raise RarebirdError(f"augenrules --load failed (exit {proc.returncode})")
    echo("loaded (auditctl -l lists them)", err=True)


@setup.command("systemd")
@click.option("--unit-file", default=DEFAULT_UNIT_FILE, show_default=True, metavar="PATH",
              help="Where to write the unit.")  # fmt: skip
@click.option("--config", "config_path", default="/etc/rarebird/rarebird.toml",
              show_default=True, metavar="FILE",
              help="The serve configuration the unit runs with (rarebird serve --example-config "
                   "writes a documented one).")  # fmt: skip
@click.option("--store", "store_path", default="/var/lib/rarebird/rarebird.db", envvar=STORE_ENV,
              show_default=True, show_envvar=True, metavar="PATH",
              help="The store; its folder is the only path the service may write.")  # fmt: skip
@click.option("--service-user", default="rarebird", show_default=True, metavar="NAME",
              help="The account the service runs as.")  # fmt: skip
@click.option("--service-group", default="rarebird", show_default=True, metavar="NAME",
              help="Its group (give it read access to the audit log: auditd.conf log_group).")  # fmt: skip
@click.option("--command", default=None, metavar="CMD",
              help="How to start rarebird [default: this Python with -m rarebird].")  # fmt: skip
@click.option("--dry-run", is_flag=True, help="Print the unit; write nothing.")
@handle_errors
def setup_systemd(unit_file: str, config_path: str, store_path: str, service_user: str,
                  service_group: str, command: str | None, dry_run: bool) -> None:  # fmt: skip
    """Write a systemd unit for rarebird serve, sandboxed: read-only system
    (ProtectSystem=strict), NoNewPrivileges, no capabilities, only the store's folder
    writable. It is not enabled or started: the next steps are printed."""
    opts = UnitOptions(
        command=command or f"{sys.executable} -m rarebird", config=os.path.abspath(config_path),
        store=os.path.abspath(store_path), user=service_user, group=service_group,
    )  # fmt: skip
    text = systemd_unit(opts)
    if dry_run:
        click.echo(text, nl=False)
        return
    outcome = _write(unit_file, text, 0o644)
    echo(f"{unit_file}: {outcome}", err=True)
    echo("next: systemctl daemon-reload && systemctl enable --now "
         f"{Path(unit_file).name}", err=True)  # fmt: skip
