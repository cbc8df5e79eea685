"""``rarebird export parquet``: any supported input as ECS Parquet, partitioned by day."""

from __future__ import annotations

import click

from rarebird.cli._common import handle_errors, main
from rarebird.cli._inputs import input_options, input_settings
from rarebird.cli._output import echo


@main.group()
def export() -> None:
    """Write events in another format (for a data lake)."""


@export.command("parquet")
@input_options
@click.option("-o", "--output", "out_dir", required=True, metavar="DIR",
              help="Folder to write day=YYYY-MM-DD/part-N.parquet into.")  # fmt: skip
@click.argument("inputs", nargs=-1, required=True, metavar="FILES...")
@handle_errors
def export_parquet_cmd(
    input_format: str,
    passwd_file: str | None,
    group_file: str | None,
    host_name: str | None,
    identity: str,
    workers: int,
    out_dir: str,
    inputs: tuple[str, ...],
) -> None:
    """Read INPUTS in any supported format; write their events as ECS Parquet by day (UTC).

    Every event is written, the datafeed applies when the folder is read
    (`rarebird job run DIR`). Prints the files written and the counts.
    """
    from rarebird.run.export import export_parquet

    settings = input_settings(input_format, passwd_file, group_file, host_name, identity, workers)
    report = export_parquet(inputs, out_dir, settings)
    for path, count in report.files.items():
        echo(f"{path}  {count:,} events")
    stats = report.read
    echo(f"rarebird: {report.events:,} events written to {len(report.files)} file(s), "
         f"{stats.skipped_total:,} input line(s) skipped", err=True)  # fmt: skip
    for reason, count in sorted(stats.skipped.items()):
        echo(f"rarebird: skipped {count:,}: {reason}", err=True)
