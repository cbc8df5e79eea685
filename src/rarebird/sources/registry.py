"""The input formats: one table, each format's module imported on first use.

:data:`BUILTIN` is the one list of built-in formats: the name users give (``--input-format``,
``format =`` in the service's configuration), the module that reads it, and the names in that
module of its factory (:class:`~rarebird.sources.base.SourceFactory`), its sniffer
(:data:`~rarebird.sources.base.Sniffer`) and, when its records can span lines, its chunk framer
(:data:`~rarebird.sources.base.Framer`). The order of the table is the tie-break order of
``auto`` (and the format an empty input is given to). Other formats are added at run time with
:func:`register_format` and come after the built-ins; one added under a built-in's name takes
its place.

A format's module is imported when its factory or sniffer is first needed: naming a format
imports that module only, ``auto`` imports every sniffer's. :func:`format_names` (for help
texts and messages) imports nothing.

:func:`open_format` is the only way the sources layer opens an input in a format: file reading
(:func:`~rarebird.sources.inputs.open_source`) and the chunk parser of ``serve``
(:class:`~rarebird.sources.chunks.ChunkParser`) both go through it, and it is where the login
identity is applied (:mod:`rarebird.sources.identity`), for every format alike.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from rarebird.errors import RarebirdError
from rarebird.sources.base import Framer, Sniffer, Source, SourceFactory, SourceOptions
from rarebird.sources.identity import reader_options, with_identity
from rarebird.sources.sniff import Detection, detect_format


@dataclass(frozen=True, slots=True)
class FormatSpec:
    """A built-in format: where its code is, by name (nothing is imported)."""

    name: str
    module: str
    factory: str
    sniffer: str
    framer: str | None = None


#: The built-in formats, in the tie-break order of ``auto``. ``csv`` is the format's name
#: (what users write); ``columnar`` the module's (it reads CSV and TSV).
BUILTIN: tuple[FormatSpec, ...] = (
    FormatSpec("ecs", "rarebird.sources.ecs", "open_ecs", "sniff_ecs"),
    FormatSpec("auditd", "rarebird.sources.auditd", "open_auditd", "sniff_auditd", "frame_audit"),
    FormatSpec("laurel", "rarebird.sources.laurel", "open_laurel", "sniff_laurel"),
    FormatSpec("sysmon", "rarebird.sources.sysmon", "open_sysmon", "sniff_sysmon"),
    FormatSpec("osquery", "rarebird.sources.osquery", "open_osquery", "sniff_osquery"),
    FormatSpec("csv", "rarebird.sources.columnar", "open_csv", "sniff_csv"),
    FormatSpec("ocsf", "rarebird.sources.ocsf", "open_ocsf", "sniff_ocsf"),
    FormatSpec("parquet", "rarebird.sources.parquet", "open_parquet", "sniff_parquet"),
)

#: The names of the built-in formats, in order.
BUILTIN_FORMATS: tuple[str, ...] = tuple(spec.name for spec in BUILTIN)


def frame_lines(data: bytes, final: bool, idle: bool) -> int:
    """Complete lines; everything once the input is final (the default framer).

    >>> frame_lines(b'{"a": 1}\\n{"b"', False, False), frame_lines(b'{"b"', True, False)
    (9, 4)
    """
    if final:
        return len(data)
    return data.rfind(b"\n") + 1


@dataclass(frozen=True, slots=True)
class InputFormat:
    """A format ready to use: its factory, sniffer and chunk framer."""

    name: str
    factory: SourceFactory
    sniffer: Sniffer
    framer: Framer = frame_lines


_ADDED: dict[str, InputFormat] = {}
_IMPORTED: dict[str, InputFormat] = {}
_SPECS = {spec.name: spec for spec in BUILTIN}


def register_format(
    name: str, factory: SourceFactory, sniffer: Sniffer, framer: Framer = frame_lines
) -> None:
    """Add (or replace) an input format under ``name``."""
    if not name or name == "auto":
        raise ValueError(f"invalid format name {name!r}")
    _ADDED[name] = InputFormat(name, factory, sniffer, framer)


def format_names() -> tuple[str, ...]:
    """Every format's name, in the tie-break order of ``auto``; imports nothing."""
    return BUILTIN_FORMATS + tuple(n for n in _ADDED if n not in _SPECS)


def unknown_format(fmt: str) -> str:
    """The message for a format name nobody knows."""
    return f"unknown input format {fmt!r} (known: {', '.join(format_names())})"


def undetected_format() -> str:
    """The message for an input whose format ``auto`` cannot tell."""
    return f"cannot tell the input format; name one ({', '.join(format_names())})"


def input_format(name: str) -> InputFormat:
    """The format called ``name``, its module imported if need be.

    Raises :class:`~rarebird.errors.RarebirdError` for an unknown name, or a built-in whose
    module cannot be imported.
    """
    added = _ADDED.get(name)
    if added is not None:
        return added
    spec = _SPECS.get(name)
    if spec is None:
        raise RarebirdError(unknown_format(name))
    try:
        return _import(spec)
    except ModuleNotFoundError as exc:
        raise RarebirdError(f"input format {name!r} is not available: {exc}") from None


def _import(spec: FormatSpec) -> InputFormat:
    found = _IMPORTED.get(spec.name)
    if found is None:
        module = importlib.import_module(spec.module)
        framer = frame_lines if spec.framer is None else getattr(module, spec.framer)
        found = InputFormat(
            spec.name, getattr(module, spec.factory), getattr(module, spec.sniffer), framer
        )
        _IMPORTED[spec.name] = found
    return found


def registered_formats() -> dict[str, InputFormat]:
    """Every usable format, in the tie-break order of ``auto``; built-ins are imported (one
    whose module does not exist, as an optional one that is not installed, is left out)."""
    out: dict[str, InputFormat] = {}
    for name in format_names():
        added = _ADDED.get(name)
        if added is not None:
            out[name] = added
            continue
        spec = _SPECS[name]
        try:
            out[name] = _import(spec)
        except ModuleNotFoundError as exc:
            if exc.name != spec.module:
                raise  # the module exists but something it needs does not: a real error
    return out


def load_builtin_formats() -> None:
    """Import every built-in format's module now rather than on first use."""
    registered_formats()


def detect(head: bytes) -> Detection | None:
    """The format whose sniffer is most confident about ``head`` (ties: table order)."""
    return detect_format(head, {n: f.sniffer for n, f in registered_formats().items()})


def open_format(name: str, path: str, options: SourceOptions) -> Source:
    """Open ``path`` as format ``name``, with ``options.identity`` applied to its events.

    The format's reader sees the records as written; the login identity, when asked for, is
    applied to what it yields (:mod:`rarebird.sources.identity`).
    """
    fmt = input_format(name)
    return with_identity(fmt.factory(path, reader_options(options)), options.identity)
