"""Shared pieces of the CLI: the root group, exit codes, output formats, progress."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from rarebird import __version__
from rarebird.cli._output import (
    Column,
    Progress,
    Rows,
    echo,
    emit,
    input_size,
    write_json,
    write_ndjson,
)
from rarebird.clock import SYSTEM_CLOCK
from rarebird.errors import (
    DefinitionError,
    InputError,
    QueryError,
    RarebirdError,
    StateError,
    StoreError,
    StoreFault,
)
from rarebird.timeutil import parse_time

if TYPE_CHECKING:
    from rarebird.run.replay import Progress as RunProgress
    from rarebird.store import Store

P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])

EXIT_OK = 0
#: a definition, the store or the state cannot be used (names the file and the key)
EXIT_USAGE = 1
#: an input or a store that cannot be read (or bad lines with --strict); click's usage errors
EXIT_INPUT = 2


def _steady_heap() -> None:
    """Big buffers go back to the system when freed. glibc raises its mmap threshold to the
    largest block it has freed and serves the next ones from its heap, which then only grows:
    the process running the job of a parallel read (a 25 MiB window for each piece it reads
    itself) grew by 13 to 37 MB on the 1.4 GB realistic log. A fixed threshold of 16 MiB keeps
    the smaller buffers that are reused chunk after chunk (ECS's 8 MiB) in the heap. No
    effect without glibc."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, 16 * 1024 * 1024)  # M_MMAP_THRESHOLD
        # a fixed threshold also stops glibc's own choice of when to give the heap's top back:
        # at its default (128 KiB) the heap shrank and grew again around every 1 MiB numpy
        # temporary (auditd --workers 1: 0.5 s slower)
        libc.mallopt(-1, 32 * 1024 * 1024)  # M_TRIM_THRESHOLD


class LazyGroup(click.Group):
    """The root command: each area's module is imported only when one of its commands is
    used (or listed by --help), so ``rarebird job run`` does not pay for the service, the rule
    or the generator code. A module registers its commands on ``main`` when imported."""

    #: command name -> module that registers it
    MODULES: dict[str, str] = {
        "job": "rarebird.cli.job",
        "results": "rarebird.cli.results",
        "generate": "rarebird.cli.generate",
        "detect": "rarebird.cli.detect",
        "evaluate": "rarebird.cli.evaluate",
        "rule": "rarebird.cli.rule",
        "alerts": "rarebird.cli.alerts",
        "exceptions": "rarebird.cli.exceptions",
        "value-lists": "rarebird.cli.lists",
        "triage": "rarebird.cli.triage",
        "serve": "rarebird.cli.serve",
        "status": "rarebird.cli.serve",
        "snapshots": "rarebird.cli.serve",
        "ui": "rarebird.cli.ui",
        "setup": "rarebird.cli.setup",
        "store": "rarebird.cli.store",
        "outputs": "rarebird.cli.outputs",
        "export": "rarebird.cli.export",
        "jobs": "rarebird.cli.jobs",
    }

    #: what ``rarebird --help`` lists for a command whose module is not imported (importing
    #: them all costs a second: the job's modules import scipy); each is the command's own
    #: first sentence (tests/test_cli_vocabulary.py compares the two listings)
    SUMMARIES: dict[str, str] = {
        "alerts": "List alerts and move them through the workflow (open, acknowledged, closed).",
        "detect": "Run the job and the rule together over historical events; print the new alerts.",
        "evaluate": "Replay INPUTS through the job and rule (as `detect` does, in a throw-away store) and score the alerts against LABELS: per label class events caught and missed, alerts, time to the first alert, alerts per day and precision, for the ML rule (and with `--profile quiet` the quiet profile beside it) and a New Terms rule on user.name with 14 days of history; and the same swept over the anomaly threshold.",
        "exceptions": "Rule exceptions: Elastic exception items, schedule windows, allow-lists.",
        "export": "Write events in another format (for a data lake).",
        "generate": "Write sample Linux process telemetry as ECS NDJSON, the same bytes for the same seed.",
        "job": "Run the anomaly detection job over events.",
        "jobs": "The packaged anomaly jobs (Elastic's Linux discovery family).",
        "outputs": "Alert outputs: delivery state, dead letters, replay.",
        "results": "Show anomaly results (records, buckets or influencers) with Elastic's field names.",
        "rule": "Run the detection rule over the store.",
        "serve": "Run the job and the rule continuously over followed inputs (and HTTP ingest).",
        "setup": "Write the audit rules and the systemd unit a host needs to run rarebird serve.",
        "snapshots": "Model snapshots kept by rarebird serve: list them, revert the model to one.",
        "status": "What a service keeps: job statistics, datafeed frontier, late data, gaps, snapshots.",
        "store": "Look after the SQLite store.",
        "triage": "Explain one anomaly: why it scored as it did, the user's history, and the other discovery commands around it.",
        "ui": "Serve the alerts, the Anomaly Explorer, users' timelines and the job's health as web pages, until interrupted.",
        "value-lists": "Value lists for 'in-list' exception entries (Elastic's /api/lists).",
    }

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Replays allocate many short-lived objects and keep few: a larger first
        # garbage-collection generation saves about a tenth of a second per million lines.
        import gc

        gc.set_threshold(50_000, 20, 20)
        _steady_heap()
        return super().main(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.MODULES) | set(self.commands))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """Click's listing of the commands, with :data:`SUMMARIES` for those not imported."""
        rows: list[tuple[str, click.Command]] = []
        for name in self.list_commands(ctx):
            if name not in self.commands and name in self.SUMMARIES:
                rows.append((name, click.Command(name, help=self.SUMMARIES[name])))
                continue
            cmd = self.get_command(ctx, name)
            if cmd is not None and not cmd.hidden:
                rows.append((name, cmd))
        if not rows:
            return
        limit = formatter.width - 6 - max(len(name) for name, _ in rows)
        with formatter.section("Commands"):
            formatter.write_dl([(name, cmd.get_short_help_str(limit)) for name, cmd in rows])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.MODULES:
            import importlib

            try:
                importlib.import_module(self.MODULES[cmd_name])
            except ModuleNotFoundError as exc:
                if exc.name != self.MODULES[cmd_name]:
                    raise
        return self.commands.get(cmd_name)


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="rarebird")
def main() -> None:
    """rarebird: Elastic's "Unusual Linux Network Connection Discovery" detection, self-hosted.

    Replays Linux process events through the rare-by-user.name anomaly job, scores them the
    way Elastic's engine does, and turns anomalies into alerts with the detection rule.

    \b
    Typical use:
      rarebird job run events.ndjson            model the events, store results
      rarebird results --type record            look at what was found
      rarebird detect events.ndjson             job + rule together, print alerts
    """


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn rarebird errors into a one-line message and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (InputError, StoreFault) as exc:
            echo(f"rarebird: error: {exc}", err=True)
            sys.exit(EXIT_INPUT)
        except (DefinitionError, QueryError, StateError, StoreError, RarebirdError) as exc:
            echo(f"rarebird: error: {exc}", err=True)
            sys.exit(EXIT_USAGE)

    return wrapper


def time_value(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    """Option callback for a time: ISO-8601, epoch millis, ``now-1h``, or ``7d`` for seven days
    ago (:func:`rarebird.timeutil.parse_time`, from the clock's now)."""
    return None if value is None else _time(ctx, param, value)


def time_ranges(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> list[tuple[datetime, datetime]]:
    """Option callback for a repeatable ``START/END``, each a time as :func:`time_value` reads."""
    out = []
    for text in values:
        start, sep, end = text.partition("/")
        if not sep:
            raise click.BadParameter("expected START/END", ctx=ctx, param=param)
        out.append((_time(ctx, param, start), _time(ctx, param, end)))
    return out


def _time(ctx: click.Context, param: click.Parameter, text: str) -> datetime:
    try:
        return parse_time(text, SYSTEM_CLOCK.now())
    except ValueError as exc:
        raise click.BadParameter(str(exc), ctx=ctx, param=param) from None


def print_ndjson(docs: Iterable[dict[str, Any]]) -> None:
    write_ndjson(docs)


def print_json(docs: Sequence[dict[str, Any]] | dict[str, Any]) -> None:
    write_json(docs)


def print_table(
    headers: Sequence[str | Column], rows: Sequence[Sequence[Any]], *, empty: str = "(none)"
) -> None:
    """A table laid out for the terminal (see :mod:`rarebird.cli._output`)."""
    emit(Rows.of(headers, rows, empty=empty), "table")


# ---------------------------------------------------------------------------------------------
# the store


DEFAULT_STORE = "rarebird.db"
STORE_ENV = "RAREBIRD_STORE"

store_option = click.option(
    "--store",
    "store_path",
    default=DEFAULT_STORE,
    show_default=True,
    envvar=STORE_ENV,
    show_envvar=True,
    metavar="PATH",
    help="SQLite store (results, model state, alerts, exceptions).",
)


def open_existing_store(path: str) -> Store:
    """The store at ``path`` for a command that reads it: a missing file is an error naming the
    path (exit 2), never a new empty store that would answer "nothing found"."""
    from rarebird.store import open_store

    if path != ":memory:" and not os.path.exists(path):
        raise InputError(
            path,
            "no such store (give --store PATH or set RAREBIRD_STORE; "
            "'rarebird job run' or 'rarebird detect' creates one)",
        )
    return open_store(path, create=False)


# ---------------------------------------------------------------------------------------------
# options with old spellings


class AliasedOption(click.Option):
    """An option whose second and later names are older spellings: they are accepted, but
    --help shows only the first."""

    def get_help_record(self, ctx: click.Context) -> tuple[str, str] | None:
        names, secondary = self.opts, self.secondary_opts
        longs = [o for o in names if o.startswith("--")][:1]
        shorts = [o for o in names if not o.startswith("--")][:1]
        self.opts = shorts + longs or names[:1]
        self.secondary_opts = secondary[:1]
        try:
            return super().get_help_record(ctx)
        finally:
            self.opts, self.secondary_opts = names, secondary


def since_until_options(what: str = "Anomaly time") -> Callable[[F], F]:
    """``--since`` / ``--until``: the time filter of every command that filters by time
    (``--start`` / ``--end`` are accepted as older spellings)."""
    since = click.option(
        "--since", "--start", "since", cls=AliasedOption, metavar="TIME", callback=time_value,
        help=f"{what} at or after this (ISO-8601, epoch ms, now-1h, or 7d for seven days ago).",
    )  # fmt: skip
    until = click.option(
        "--until", "--end", "until", cls=AliasedOption, metavar="TIME", callback=time_value,
        help=f"{what} before this (ISO-8601, epoch ms, now-1h, or 7d for seven days ago).",
    )  # fmt: skip

    def decorate(func: F) -> F:
        return since(until(func))

    return decorate


# ---------------------------------------------------------------------------------------------
# progress


def reading_progress(
    inputs: Sequence[str], *, quiet: bool, progress: bool | None
) -> tuple[Progress, Callable[[RunProgress], None]]:
    """A progress bar for reading ``inputs`` (on a terminal unless ``--no-progress``; never
    with ``--quiet``), and the callback the replay reports to."""
    shown = not quiet and (sys.stderr.isatty() if progress is None else progress)
    total = None
    if shown:
        from rarebird.sources import expand_inputs

        try:
            total = input_size(expand_inputs(inputs))
        except RarebirdError:
            total = None  # the replay reports it
    meter = Progress(enabled=shown, total_bytes=total)

    def show(p: RunProgress) -> None:
        meter.update(p.lines, p.kept, p.bytes)
        if p.final:
            meter.done()

    return meter, show
