"""A fake sink and the contract every :class:`~rarebird.sinks.base.Sink` keeps.

:func:`check_sink` writes a new alert, then a changed version of it and another new one, closes
the sink, and asserts that what the receiving end got (read back by the caller's ``delivered``)
holds every alert, by ``kibana.alert.uuid``, with its latest content, and that the sink has a
name for messages. The change is a workflow status by default; the Elasticsearch outputs leave
the analyst's workflow fields to Kibana, so they are checked with a suppression count instead
(``change=``). Run over every output kind (``tests/test_contracts.py``), against real
files, a real store and real loopback receivers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from rarebird.alerts.model import Alert
from rarebird.sinks.base import Sink


@dataclass
class MemorySink:
    """A sink that keeps what it is given (in order) and whether it was closed."""

    label: str = "memory"
    written: list[Alert] = field(default_factory=list)
    closed: bool = False

    @property
    def name(self) -> str:
        return self.label

    def write(self, alerts: Sequence[Alert]) -> None:
        if self.closed:
            raise ValueError("write after close")
        self.written.extend(alerts)

    def close(self) -> None:
        self.closed = True


def check_sink(
    make: Callable[[], Sink],
    delivered: Callable[[], Sequence[Mapping[str, Any]]],
    alerts: Sequence[Alert],
    *,
    change: tuple[str, Any] = ("kibana.alert.workflow_status", "acknowledged"),
) -> None:
    """``alerts``: at least two new alerts (revision 0); ``change``: the field and value the
    changed alert gets. See the module doc."""
    assert len(alerts) >= 2
    assert all(a.revision == 0 for a in alerts)
    first, rest = alerts[0], list(alerts[1:])
    changed_doc = dict(first.doc)
    changed_doc[change[0]] = change[1]
    changed = Alert(first.id, changed_doc, first.revision + 1)
    sink = make()
    assert sink.name, "a sink names where its alerts go"
    sink.write([first])
    sink.write([changed, *rest])
    sink.close()
    got = delivered()
    latest: dict[str, Mapping[str, Any]] = {}
    for doc in got:
        latest[str(doc["kibana.alert.uuid"])] = doc
    assert set(latest) == {a.id for a in alerts}, "every alert is delivered"
    assert latest[first.id][change[0]] == change[1], (
        "the changed alert is delivered after the new one, with its changes"
    )
