"""Stage 1: sources. Registry of input formats; see :mod:`rarebird.sources.base` for the contract.

Each built-in format lives in ``rarebird.sources.<name>`` and registers itself with
:func:`~rarebird.sources.inputs.register_format` when imported. :data:`BUILTIN_FORMATS` is the
one list of those modules; :func:`load_builtin_formats` imports them (a module that does not
exist yet is skipped quietly). Registration order is the tie-break order of ``--format auto``.
"""

from __future__ import annotations

import importlib

from rarebird.sources.base import (
    KEEP_ALL,
    FieldCondition,
    Prefilter,
    Source,
    SourceFactory,
    SourceOptions,
)
from rarebird.sources.inputs import (
    STDIN,
    InputFormat,
    MergedSource,
    OpenedSource,
    expand_inputs,
    merge_by_time,
    open_binary,
    open_source,
    register_format,
    registered_formats,
)

#: Modules under ``rarebird.sources`` that register a format when imported, in this order.
BUILTIN_FORMATS: tuple[str, ...] = ("ecs", "auditd", "laurel", "sysmon", "osquery", "columnar")

_loaded = False


def load_builtin_formats() -> None:
    """Import every built-in format module once; skip those that do not exist (yet)."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_FORMATS:
        module = f"{__name__}.{name}"
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise  # the module exists but something it needs does not: a real error


__all__ = [
    "BUILTIN_FORMATS",
    "KEEP_ALL",
    "STDIN",
    "FieldCondition",
    "InputFormat",
    "MergedSource",
    "OpenedSource",
    "Prefilter",
    "Source",
    "SourceFactory",
    "SourceOptions",
    "expand_inputs",
    "load_builtin_formats",
    "merge_by_time",
    "open_binary",
    "open_source",
    "register_format",
    "registered_formats",
]
