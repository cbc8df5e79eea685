"""Stage 1: sources. Registry of input formats; see :mod:`rarebird.sources.base` for the contract."""

from __future__ import annotations

from rarebird.sources.base import (
    KEEP_ALL,
    FieldCondition,
    Prefilter,
    Source,
    SourceFactory,
    SourceOptions,
)

__all__ = ["KEEP_ALL", "FieldCondition", "Prefilter", "Source", "SourceFactory", "SourceOptions"]
