"""``rarebird generate``: write deterministic sample telemetry (see :mod:`rarebird.generate.scenarios`)."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click

from rarebird.cli._common import EXIT_USAGE, AliasedOption, handle_errors, main
from rarebird.clock import SYSTEM_CLOCK
from rarebird.generate.ecs import write_ecs, write_ecs_file
from rarebird.generate.fleet import DISCOVERY_NAMES, attack_window
from rarebird.generate.options import PROFILES, GeneratorOptions, parse_start
from rarebird.generate.scenarios import generate_documents
from rarebird.timeutil import iso


@main.command()
@click.option(
    "--profile",
    type=click.Choice(PROFILES),
    default="fleet",
    show_default=True,
    help="fleet: a server fleet with a constructed compromised account (the demo); "
    "bench: N rich documents, fast, for throughput tests; labelled: a 30-host, 28-day fleet "
    "with labelled admins, a new hire and constructed attacks (for evaluate, with --labels).",
)
@click.option("--days", type=click.IntRange(min=1), default=None,
              help="Days of telemetry (fleet 14, labelled 28).")  # fmt: skip
@click.option("--start", default=None,
              help="First day (UTC): a date (fleet 2026-01-05, labelled 2026-02-02), or "
                   "'today-14d' style (today-Nd) for data ending now.")  # fmt: skip
@click.option("--seed", type=int, default=7, show_default=True,
              help="The same seed writes the same bytes.")  # fmt: skip
@click.option(
    "--events",
    type=click.IntRange(min=0),
    default=None,
    help="How many events (bench profile; default 1,000,000).",
)
@click.option("--hosts", type=click.IntRange(min=1), default=None,
              help="Servers in the fleet (fleet 6, labelled 30).")  # fmt: skip
@click.option("--labels", metavar="FILE.csv", default=None,
              help="Write the labels of the labelled profile's discovery runs here "
                   "(@timestamp,host.name,user.name,process.name,label).")  # fmt: skip
@click.option(
    "--users", type=click.IntRange(min=0), default=5, show_default=True, help="Human users."
)
@click.option(
    "--discovery-fraction",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    help="Share of netstat/ss/route/showmount runs (fleet 0.5, bench 0.02).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["ecs", "auditd"]),
    default="ecs",
    show_default=True,
    help="ecs: Elastic Defend-like NDJSON; auditd: raw ENRICHED audit records with node=.",
)
@click.option("--file", "-f", "--output", "-o", "output", cls=AliasedOption, required=True,
              metavar="FILE", help="File to write ('-' for stdout; '.gz' compresses).")  # fmt: skip
@handle_errors
def generate(
    profile: str,
    days: int | None,
    start: str | None,
    seed: int,
    events: int | None,
    hosts: int | None,
    labels: str | None,
    users: int,
    discovery_fraction: float | None,
    fmt: str,
    output: str,
) -> None:
    """Write sample Linux process telemetry as ECS NDJSON, the same bytes for the same seed.

    The fleet profile has monitoring agents running ss/netstat on schedules, admins
    troubleshooting now and then, ordinary commands and decoys (sshd, ssh, sss_cache,
    ip route), and one CONSTRUCTED attack: late in the period the web server's www-data
    account runs a burst of discovery commands taken from atomic-red-team emulations
    (T1049, T1016, T1135).
    """
    if events is not None and profile != "bench":
        click.echo("rarebird: error: --events applies to --profile bench", err=True)
        sys.exit(EXIT_USAGE)
    if (labels is not None) != (profile == "labelled"):
        click.echo("rarebird: error: --profile labelled needs --labels FILE.csv (and --labels "
                   "applies to it only)", err=True)  # fmt: skip
        sys.exit(EXIT_USAGE)
    if profile == "labelled":
        _write_labelled(days or 28, hosts or 30, start, seed, output, labels or "", fmt)
        return
    days = days or 14
    hosts = hosts or 6
    try:
        first_day = _start(start or "2026-01-05")
        options = GeneratorOptions(
            profile=profile,
            days=days,
            start=first_day,
            hosts=hosts,
            users=users,
            discovery_fraction=discovery_fraction,
            events=1_000_000 if events is None else events,
            seed=seed,
        )
    except ValueError as exc:
        click.echo(f"rarebird: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    if output != "-":
        try:
            Path(output).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            click.echo(f"rarebird: error: {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_USAGE)
    if fmt == "auditd":
        _write_auditd(options, output)
        return
    counter = _Counter()
    docs = counter.count(generate_documents(options))
    if output == "-":
        write_ecs(docs, sys.stdout.buffer)
        sys.stdout.buffer.flush()
    else:
        try:
            write_ecs_file(output, docs)
        except OSError as exc:
            click.echo(f"rarebird: error: {output}: {exc.strerror or exc}", err=True)
            sys.exit(EXIT_USAGE)
    where = "stdout" if output == "-" else output
    click.echo(
        f"wrote {counter.total:,} {fmt} events ({counter.discovery:,} netstat/ss/route/showmount "
        f"starts) to {where}",
        err=True,
    )
    if profile == "fleet":
        begin, end = attack_window(options)
        click.echo(
            f"constructed attack: www-data discovery burst {iso(begin)} .. {iso(end)}", err=True
        )


def _write_labelled(
    days: int, hosts: int, start: str | None, seed: int, output: str, labels: str, fmt: str
) -> None:
    from rarebird.generate.labelled import LabelledOptions, labelled_fleet, write_labels

    if fmt != "ecs" or output == "-":
        click.echo("rarebird: error: the labelled profile writes ECS to a file", err=True)
        sys.exit(EXIT_USAGE)
    try:
        first = LabelledOptions().start if start is None else _start(start)
        options = LabelledOptions(days=days, hosts=hosts, seed=seed, start=first)
    except ValueError as exc:
        click.echo(f"rarebird: error: {exc}", err=True)
        sys.exit(EXIT_USAGE)
    rows = list(labelled_fleet(options))
    try:
        total = write_ecs_file(output, (doc for doc, _ in rows))
        with open(labels, "w", encoding="utf-8", newline="") as f:
            labelled = write_labels(rows, f)
    except OSError as exc:
        click.echo(f"rarebird: error: {exc.filename}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(f"wrote {total:,} ecs events to {output} and {labelled:,} labels to {labels}",
               err=True)  # fmt: skip


def _write_auditd(options: GeneratorOptions, output: str) -> None:
    from rarebird.generate.auditd import AuditLogOptions, write_audit_log
    from rarebird.generate.scenarios import generate_events

    events = (e for e in generate_events(options) if not e.event_type or "start" in e.event_type)
    audit = AuditLogOptions(node=True)
    try:
        if output == "-":
            log = write_audit_log(events, sys.stdout.buffer, audit)
            sys.stdout.buffer.flush()
        else:
            with open(output, "wb") as f:
                log = write_audit_log(events, f, audit)
    except OSError as exc:
        click.echo(f"rarebird: error: {output}: {exc.strerror or exc}", err=True)
        sys.exit(EXIT_USAGE)
    where = "stdout" if output == "-" else output
    click.echo(
        f"wrote {log.events:,} exec events ({log.records:,} audit records) to {where}", err=True
    )


def _start(text: str) -> datetime:
    """``--start``: a date or time (:func:`parse_start`), or ``today`` / ``today-Nd``: midnight
    UTC of today's date, N days back (data that ends around now, for ``serve``)."""
    m = re.fullmatch(r"today(?:-(\d+)d)?", text.strip())
    if m is None:
        return parse_start(text)
    midnight = SYSTEM_CLOCK.now().replace(hour=0, minute=0, second=0, microsecond=0)
    return midnight - timedelta(days=int(m.group(1) or 0))


class _Counter:
    def __init__(self) -> None:
        self.total = 0
        self.discovery = 0

    def count(self, docs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for doc in docs:
            self.total += 1
            process = doc.get("process", {})
            if process.get("name") in DISCOVERY_NAMES and "start" in doc["event"]["type"]:
                self.discovery += 1
            yield doc
