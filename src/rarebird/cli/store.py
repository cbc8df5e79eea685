"""``rarebird store check``: the store file's integrity, read-only."""

from __future__ import annotations

import sys

import click

from rarebird.cli._common import EXIT_INPUT, handle_errors, main, print_json, store_option
from rarebird.cli._output import format_option


@main.group("store")
def store_group() -> None:
    """Look after the SQLite store."""


@store_group.command("check")
@store_option
@format_option(("table", "json"))
@handle_errors
def store_check(store_path: str, fmt: str) -> None:
    """Verify a store: SQLite's integrity check, schema versions, the job and service states
    (JSON of a version this rarebird reads) and rows that point at nothing. Read-only. Exits 2
    when the store is damaged, 0 otherwise (orphan rows are warnings)."""
    from rarebird.job import STATE_VERSION
    from rarebird.run.state import STATE_VERSION as ENGINE_STATE_VERSION
    from rarebird.store.check import check_store

    report = check_store(
        store_path, {"job_state": STATE_VERSION, "serve_state": ENGINE_STATE_VERSION}
    )
    if fmt == "json":
        print_json({
            "store": store_path, "ok": report.ok, "checked": report.checked,
            "problems": [{"check": f.check, "message": f.message, "fatal": f.fatal}
                         for f in report.findings],
            "notes": report.notes,
        })  # fmt: skip
    else:
        for finding in report.findings:
            level = "error" if finding.fatal else "warning"
            click.echo(f"{store_path}: {level}: {finding.check}: {finding.message}")
        for note in report.notes:
            click.echo(f"{store_path}: note: {note}")
        verdict = "ok" if report.ok else "DAMAGED"
        click.echo(f"{store_path}: {verdict} (checked: {', '.join(report.checked) or 'nothing'})")
    if not report.ok:
        sys.exit(EXIT_INPUT)
