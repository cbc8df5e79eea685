"""Shared pieces of the CLI: the root group, exit codes, output formats, progress."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

import click
import orjson

from rarebird import __version__
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

P = ParamSpec("P")
R = TypeVar("R")

EXIT_OK = 0
EXIT_USAGE = 1  # usage or definition error
EXIT_INPUT = 2  # input unreadable


class LazyGroup(click.Group):
    """The root command: each area's module is imported only when one of its commands is
    used (or listed by --help), so ``rarebird job run`` does not pay for the service, the rule
    or the generator code. A module registers its commands on ``main`` when imported."""

    #: command name -> module that registers it
    MODULES: dict[str, str] = {
        "job": "rarebird.cli.job",
        "results": "rarebird.cli.job",
        "generate": "rarebird.cli.generate",
        "detect": "rarebird.cli.detect",
        "rule": "rarebird.cli.rule",
        "alerts": "rarebird.cli.alerts",
        "exceptions": "rarebird.cli.exceptions",
        "value-lists": "rarebird.cli.lists",
        "triage": "rarebird.cli.triage",
        "serve": "rarebird.cli.serve",
        "status": "rarebird.cli.serve",
        "snapshots": "rarebird.cli.serve",
        "store": "rarebird.cli.store",
        "outputs": "rarebird.cli.outputs",
    }

    def main(self, *args: Any, **kwargs: Any) -> Any:
        # Replays allocate many short-lived objects and keep few: a larger first
        # garbage-collection generation saves about a tenth of a second per million lines.
        import gc

        gc.set_threshold(50_000, 20, 20)
        return super().main(*args, **kwargs)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.MODULES) | set(self.commands))

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
            click.echo(f"rarebird: error: {exc}", err=True)
            sys.exit(EXIT_INPUT)
        except (DefinitionError, QueryError, StateError, StoreError, RarebirdError) as exc:
            click.echo(f"rarebird: error: {exc}", err=True)
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
    out = sys.stdout.buffer
    for doc in docs:
        out.write(orjson.dumps(doc) + b"\n")
    out.flush()


def print_json(docs: Sequence[dict[str, Any]] | dict[str, Any]) -> None:
    sys.stdout.buffer.write(orjson.dumps(docs, option=orjson.OPT_INDENT_2) + b"\n")
    sys.stdout.buffer.flush()


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], *, empty: str = "(none)"
) -> None:
    """A plain aligned table; numbers right-aligned."""
    if not rows:
        click.echo(empty)
        return
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [
        all(isinstance(row[i], int | float) or row[i] is None for row in rows)
        for i in range(len(headers))
    ]

    def fmt(values: Sequence[str], bold: bool = False) -> str:
        parts = [
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ]
        line = "  ".join(parts).rstrip()
        return click.style(line, bold=True) if bold else line

    click.echo(fmt(list(headers), bold=True))
    for row in cells:
        click.echo(fmt(row))


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(_cell(v) for v in value)
    return str(value)


class Progress:
    """Progress on stderr for long inputs: events read, kept, rate. Silent when not a TTY
    unless forced; always silent with ``quiet``."""

    def __init__(self, *, enabled: bool, interval: float = 1.0) -> None:
        self.enabled = enabled
        self.interval = interval
        self.start = time.monotonic()
        self.last = self.start
        self.shown = False

    def update(self, read: int, kept: int, extra: str = "", *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self.last < self.interval and not force:
            return
        self.last = now
        rate = read / max(now - self.start, 1e-9)
        msg = f"\r  read {read:,} lines  kept {kept:,} events  {rate:,.0f} lines/s  {extra}"
        click.echo(msg.ljust(78), err=True, nl=False)
        self.shown = True

    def done(self) -> None:
        if self.shown:
            click.echo("", err=True)
