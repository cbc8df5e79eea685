"""``rarebird ui``: the triage pages in a browser (see docs/UI.md)."""

from __future__ import annotations

import os

import click

from rarebird.cli._common import handle_errors, main, store_option
from rarebird.errors import RarebirdError


@main.command("ui")
@store_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on; beyond loopback needs RAREBIRD_UI_TOKEN.")  # fmt: skip
@click.option("--port", default=8765, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")  # fmt: skip
@click.option("--rule", "rule_path", metavar="RULE.toml",
              help="The rule exceptions are added to [default: the packaged rule].")  # fmt: skip
@handle_errors
def ui_cmd(store_path: str, host: str, port: int, rule_path: str | None) -> None:
    """Serve the alerts, the Anomaly Explorer, users' timelines and the job's health as web
    pages, until interrupted.

    Log in with the URL it prints (a fresh token each start), or with RAREBIRD_UI_TOKEN when
    set (at least 16 characters).
    """
    from rarebird.web.app import run_ui

    token = os.environ.get("RAREBIRD_UI_TOKEN") or None
    try:
        run_ui(store_path, host=host, port=port, token=token, rule_path=rule_path,
               announce=lambda line: click.echo(line, err=True))  # fmt: skip
    except ValueError as exc:
        raise RarebirdError(str(exc)) from None
