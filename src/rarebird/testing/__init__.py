"""Fakes and contract suites shipped with rarebird, for its tests and for extensions:

- :mod:`.sources`: :class:`ListSource` (events from a list) and :func:`check_source`, the
  contract every registered input format keeps, run on a small sample of the format;
- :mod:`.sinks`: :class:`MemorySink` and :func:`check_sink`, the contract every output keeps;
- :mod:`.stores`: :class:`MemoryRuleStore` and :func:`check_rule_store`, the contract every rule
  store keeps.
"""

from __future__ import annotations

from rarebird.testing.sources import ContractViolation, ListSource, SourceSample, check_source

__all__ = ["ContractViolation", "ListSource", "SourceSample", "check_source"]
