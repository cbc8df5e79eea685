"""Fakes and contract suites for tests (and for anyone writing a source, sink or store):
``sources`` (a list source, the source contract), ``sinks`` (a memory sink, the sink
contract), ``stores`` (a memory rule store, the rule-store contract)."""

from __future__ import annotations
