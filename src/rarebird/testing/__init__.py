"""Fakes and contract checks shipped with rarebird, for its tests and for extensions.

- :mod:`.sources`: :class:`ListSource` (events from a list) and :func:`check_source`, the
  contract every registered input format keeps, run on a small sample of the format.

The other stages (sinks, stores, the job) add theirs here as they are re-laid.
"""

from __future__ import annotations

from rarebird.testing.sources import ContractViolation, ListSource, SourceSample, check_source

__all__ = ["ContractViolation", "ListSource", "SourceSample", "check_source"]
