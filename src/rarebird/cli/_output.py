"""Everything the CLI prints passes here: one sanitiser for strings that came from events, tables
that fit the terminal (rich), the same rows as JSON, NDJSON or CSV, and progress bars.

**Escaping.** User names, process arguments, parent names and host names are written by whoever
ran the command being recorded: an attacker can name a process ``\\x1b]0;owned\\x07`` or a user
``root\\u202e``. :func:`sanitize` renders every control character (C0, DEL, C1), every
bidirectional and other invisible format character (Unicode category ``Cf``), and the line and
paragraph separators visibly, as ``\\x1b`` or ``\\u202e``, before text reaches a terminal. Table,
text and CSV output pass through it; JSON keeps the exact values, with those characters written
as ``\\u`` escapes (:func:`json_bytes`), which JSON readers turn back into the same strings.
"""

from __future__ import annotations

import csv
import io
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table
from rich.text import Text

#: the output formats of every command that prints rows
FORMATS = ("table", "json", "ndjson", "csv")

# Kibana's anomaly severity (x-pack/packages/ml/anomaly_utils get_severity.ts: critical >= 75,
# major >= 50, minor >= 25, warning below) and its colours (ML_SEVERITY_COLORS).
SEVERITIES: tuple[tuple[float, str, str], ...] = (
    (75.0, "critical", "#fe5050"),
    (50.0, "major", "#fba740"),
    (25.0, "minor", "#fdec25"),
    (float("-inf"), "warning", "#8bc8fb"),
)


def severity(score: float) -> tuple[str, str]:
    """Kibana's severity label and colour for a 0-100 anomaly score.

    >>> [severity(s)[0] for s in (80, 75, 50.5, 25, 24.9, 0)]
    ['critical', 'critical', 'major', 'minor', 'warning', 'warning']
    """
    for floor, label, colour in SEVERITIES:
        if score >= floor:
            return label, colour
    raise AssertionError("unreachable")  # pragma: no cover


# ---------------------------------------------------------------------------------------------
# escaping


def _escape(ch: str) -> str:
    code = ord(ch)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def sanitize(text: str) -> str:
    r"""``text`` with every character that could move the cursor, change the terminal or
    reorder what is shown replaced by a visible escape.

    >>> sanitize("a\x1b[2Jb\u202ec\td")
    'a\\x1b[2Jb\\u202ec\\x09d'
    >>> sanitize("www-data")
    'www-data'
    """
    if text.isprintable():
        return text
    # not printable: the controls (Cc), format characters (Cf: bidi overrides, zero widths),
    # separators other than the space (Zl, Zp, Zs), surrogates, private use and unassigned
    return "".join(ch if ch.isprintable() else _escape(ch) for ch in text)


def sanitize_lines(text: str) -> str:
    """Multi-line text (an investigation guide) with each line sanitised; newlines kept."""
    return "\n".join(sanitize(line) for line in text.split("\n"))


_JSON_UNSAFE = [ch for ch in map(chr, range(0x7F, 0xA0))] + [
    "\u061c", "\u200e", "\u200f", "\u2028", "\u2029",
    *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
]  # fmt: skip
_JSON_ESCAPES = [(ch.encode(), f"\\u{ord(ch):04x}".encode()) for ch in _JSON_UNSAFE]


def json_bytes(value: Any, *, indent: bool = False) -> bytes:
    """``value`` as JSON, with DEL, the C1 controls, the bidirectional controls and the line
    separators written as ``\\u`` escapes (orjson already escapes C0). Those characters can only
    occur inside JSON strings, so the escapes keep the document's values exactly.

    >>> json_bytes({"user": "a\\u202eb"})
    b'{"user":"a\\\\u202eb"}'
    """
    return escape_json(orjson.dumps(value, option=orjson.OPT_INDENT_2 if indent else 0))


def escape_json(data: bytes) -> bytes:
    """JSON text (from any writer) with the characters :func:`json_bytes` escapes escaped."""
    if data.isascii():
        return data
    for raw, escaped in _JSON_ESCAPES:
        if raw in data:
            data = data.replace(raw, escaped)
    return data


# ---------------------------------------------------------------------------------------------
# consoles


UNBOUNDED = 100_000


def _width(stream: IO[str]) -> int | None:
    """The width tables are laid out for: the terminal's (``COLUMNS`` overrides it); unbounded
    when the output is a file or a pipe, so lines are never folded for a program to read."""
    return None if stream.isatty() else UNBOUNDED


def console(*, err: bool = False) -> Console:
    """A rich console on stdout (or stderr): no markup or highlighting (event strings are never
    interpreted), colour only on a terminal (and never with ``NO_COLOR``)."""
    stream = sys.stderr if err else sys.stdout
    return Console(file=stream, width=_width(stream), markup=False, highlight=False, emoji=False,
                   soft_wrap=False)  # fmt: skip


def echo(text: str = "", *, err: bool = False, style: str | None = None) -> None:
    """One line (or several) of text, sanitised; ``style`` only on a terminal."""
    stream = sys.stderr if err else sys.stdout
    clean = sanitize_lines(text)
    if style and stream.isatty() and "NO_COLOR" not in os.environ:
        clean = click.style(clean, fg=style) if style != "bold" else click.style(clean, bold=True)
    click.echo(clean, err=err)


def write_json(value: Any) -> None:
    out = sys.stdout.buffer
    out.write(json_bytes(value, indent=True) + b"\n")
    out.flush()


def write_ndjson(values: Iterable[Any]) -> None:
    out = sys.stdout.buffer
    for value in values:
        out.write(json_bytes(value) + b"\n")
    out.flush()


# ---------------------------------------------------------------------------------------------
# tables


@dataclass(frozen=True)
class Column:
    """A column of a table: its title, the kind of value (which decides alignment, wrapping
    and colour) and how narrow or wide it may go when the terminal is narrow."""

    title: str
    #: text, number, score (a 0-100 score, coloured by severity), time, id
    kind: str = "text"
    #: never wider than this many characters (long values wrap), None for no limit
    max_width: int | None = None
    #: share of the width left over (rich's ratio), for the columns that take long text
    ratio: int | None = None
    #: when the terminal is too narrow for every column, columns with ``drop`` > 0 are left out,
    #: lowest first, until the rest fit (csv and json always have every column)
    drop: int = 0


@dataclass(frozen=True)
class Rows:
    """Rows to print: the table view, and what ``--format json|ndjson`` prints (``docs``; by
    default each row as an object keyed by column title). CSV is the table's cells."""

    columns: tuple[Column, ...]
    rows: tuple[tuple[Any, ...], ...]
    empty: str = "(none)"
    docs: Sequence[Any] | None = field(default=None)
    #: a header line above the rows (not for a list of name / value pairs)
    header: bool = True

    @classmethod
    def of(cls, columns: Sequence[Column | str], rows: Iterable[Sequence[Any]], *,
           empty: str = "(none)", docs: Sequence[Any] | None = None,
           header: bool = True) -> Rows:  # fmt: skip
        cols = tuple(c if isinstance(c, Column) else Column(c) for c in columns)
        return cls(cols, tuple(tuple(r) for r in rows), empty, docs, header)

    def as_docs(self) -> Sequence[Any]:
        if self.docs is not None:
            return self.docs
        return [{c.title: _plain(v) for c, v in zip(self.columns, row, strict=True)}
                for row in self.rows]  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    return value


def cell_text(value: Any) -> str:
    """A value as a table shows it: numbers rounded for reading, lists joined, nothing for
    None."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if value == 0 or 0.01 <= abs(value) < 1e6:
            return f"{value:.2f}" if abs(value) >= 1 or value == 0 else f"{value:.4f}"
        return f"{value:.3g}"
    if isinstance(value, list | tuple):
        return ", ".join(cell_text(v) for v in value)
    return str(value)


#: a cell a spreadsheet would run as a formula (OWASP "CSV injection"): =, +, -, @, tab, CR
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | int):
        return repr(value)
    if isinstance(value, list | tuple):
        return _csv_safe(", ".join(_csv_text(v) for v in value))
    return _csv_safe(str(value))


def _csv_safe(text: str) -> str:
    """Text from events (a user named ``=HYPERLINK(...)``) opened in a spreadsheet must not
    run: such a cell is prefixed with ``'``, which spreadsheets show as text (OWASP's advice).
    Numbers (``-1.5``) are left alone."""
    if text.startswith(_FORMULA_START):
        try:
            float(text)
        except ValueError:
            return "'" + text
    return text


def _min_width(col: Column, cells: Sequence[str]) -> int:
    longest = max([len(col.title), *map(len, cells)])
    if col.kind in ("number", "score", "time", "id"):
        return longest
    return min(longest, 10)


def fitted(rows: Rows, width: int) -> tuple[list[int], list[str]]:
    """The columns of ``rows`` that fit ``width`` (indexes), and the titles left out: columns
    that may be dropped go, lowest ``drop`` first, while the narrowest the rest can be (numbers,
    times and ids whole; text folded to 10 characters) is wider than the terminal."""
    texts = [[sanitize(cell_text(row[i])) for row in rows.rows] for i in range(len(rows.columns))]
    keep = list(range(len(rows.columns)))
    need = {i: _min_width(rows.columns[i], texts[i]) for i in keep}
    dropped: list[str] = []
    order = sorted((c.drop, i) for i, c in enumerate(rows.columns) if c.drop > 0)
    for _, i in order:
        if sum(need[k] for k in keep) + 2 * (len(keep) - 1) <= width:
            break
        keep.remove(i)
        dropped.append(rows.columns[i].title)
    return keep, dropped


def render_table(rows: Rows, con: Console) -> list[str]:
    """The rows as a table laid out for ``con``'s width: numbers right-aligned, times kept on
    one line, long text folded within its column, scores coloured by severity; on a narrow
    terminal the least useful columns are left out. Returns the titles left out."""
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold",
                  show_header=rows.header)  # fmt: skip
    # a file or a pipe gets every value whole, on one line; a terminal gets the table fitted
    bounded = con.width < UNBOUNDED
    keep, dropped = fitted(rows, con.width) if bounded else (list(range(len(rows.columns))), [])
    for i in keep:
        col = rows.columns[i]
        numeric = col.kind in ("number", "score")
        table.add_column(
            sanitize(col.title),
            justify="right" if numeric else "left",
            no_wrap=not bounded or col.kind in ("number", "score", "time", "id"),
            overflow="ellipsis" if col.kind == "id" else "fold",
            max_width=col.max_width if bounded else None,
            ratio=col.ratio if bounded else None,
        )
    for row in rows.rows:
        cells = []
        for i in keep:
            col, value = rows.columns[i], row[i]
            text = Text(sanitize(cell_text(value)))
            if col.kind == "score" and isinstance(value, int | float):
                text.stylize(severity(float(value))[1])
            cells.append(text)
        table.add_row(*cells)
    with con.capture() as captured:
        con.print(table)
    # rich pads every cell to its column's width; lines end where their text does
    con.file.write("\n".join(line.rstrip() for line in captured.get().split("\n")))
    con.file.flush()
    return dropped


def emit(rows: Rows, fmt: str) -> None:
    """Print ``rows`` in ``fmt`` (one of :data:`FORMATS`) on stdout."""
    if fmt == "json":
        write_json(list(rows.as_docs()))
    elif fmt == "ndjson":
        write_ndjson(rows.as_docs())
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([sanitize(c.title) for c in rows.columns])
        for row in rows.rows:
            writer.writerow([sanitize(_csv_text(v)) for v in row])
        sys.stdout.write(buf.getvalue())
        sys.stdout.flush()
    elif not rows.rows:
        echo(rows.empty)
    else:
        dropped = render_table(rows, console())
        if dropped:
            echo(f"(left out to fit the terminal: {', '.join(dropped)}; a wider terminal or "
                 "--format csv shows them)", err=True)  # fmt: skip


def emit_document(doc: Mapping[str, Any], fmt: str, table: Callable[[], None]) -> None:
    """One document (a status, a triage): ``table`` draws the human view; json / ndjson print
    the document; csv prints its leaves as ``key,value`` rows (dotted keys)."""
    if fmt == "json":
        write_json(doc)
    elif fmt == "ndjson":
        write_ndjson([doc])
    elif fmt == "csv":
        emit(Rows.of(["key", "value"], _leaves(doc, "")), "csv")
    else:
        table()


def _leaves(value: Any, prefix: str) -> list[tuple[str, Any]]:
    if isinstance(value, Mapping):
        out: list[tuple[str, Any]] = []
        for k, v in value.items():
            out.extend(_leaves(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(value, list) and any(isinstance(v, Mapping | list) for v in value):
        out = []
        for i, v in enumerate(value):
            out.extend(_leaves(v, f"{prefix}.{i}"))
        return out
    return [(prefix, value)]


# ---------------------------------------------------------------------------------------------
# the --format option


class FormatChoice(click.Choice[str]):
    """``--format``: the given choices, plus hidden aliases (``text`` for ``table``) that older
    scripts used."""

    def __init__(self, choices: Sequence[str], aliases: Mapping[str, str] | None = None) -> None:
        super().__init__(list(choices))
        self.aliases = dict(aliases or {})

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and value in self.aliases:
            value = self.aliases[value]
        return super().convert(value, param, ctx)


F = TypeVar("F", bound=Callable[..., Any])


def format_option(choices: Sequence[str] = FORMATS, default: str = "table") -> Callable[[F], F]:
    """The ``--format`` option: ``table`` for people, ``json``, ``ndjson`` or ``csv`` for
    programs."""
    return click.option(
        "--format", "fmt", type=FormatChoice(choices, {"text": "table"}), default=default,
        show_default=True,
        help="table (for people), json, ndjson (one object a line) or csv."
        if tuple(choices) == FORMATS else "Output format.",
    )  # fmt: skip


# ---------------------------------------------------------------------------------------------
# progress


class Progress:
    """A progress bar on stderr for long reads: bytes (against the inputs' size when it is
    known), lines, events kept, rate and time. Drawn only on a terminal (or when forced), and
    cleared when done, so logs and pipes never see it."""

    def __init__(self, *, enabled: bool, total_bytes: int | None = None,
                 label: str = "reading") -> None:  # fmt: skip
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        if not enabled:
            return
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )
        from rich.progress import (
            Progress as RichProgress,
        )

        con = Console(file=sys.stderr, markup=False, highlight=False, force_terminal=True)
        self._bar = RichProgress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
            TransferSpeedColumn(), TextColumn("{task.fields[lines]} lines, {task.fields[kept]} kept"),
            TimeElapsedColumn(), console=con, transient=True, redirect_stdout=False,
            redirect_stderr=False,
        )  # fmt: skip
        self._task = self._bar.add_task(label, total=total_bytes, lines="0", kept="0")
        self._bar.start()

    def update(self, lines: int, kept: int, done_bytes: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, completed=done_bytes, lines=f"{lines:,}",
                             kept=f"{kept:,}")  # fmt: skip

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def input_size(paths: Sequence[str]) -> int | None:
    """The bytes a progress bar counts to: the sum of the inputs' sizes when every input is a
    plain uncompressed file (what is read is then what is on disk), otherwise unknown."""
    total = 0
    for path in paths:
        if path == "-" or path.endswith((".gz", ".bz2", ".xz", ".zst")):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not os.path.isfile(path):
            return None
        total += st.st_size
    return total
