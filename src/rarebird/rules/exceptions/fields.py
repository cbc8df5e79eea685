"""Which fields an exception entry may name, so a typo (``usr.name``) is refused when the item is
written instead of never matching, silently, for as long as it lives.

Entries are evaluated on the anomaly record document (``AnomalyRecord.to_doc()``), which holds
Elastic's record fields and the influencer fields, which are ECS fields (``user.name``,
``host.name``, ``process.name`` ...). A field is known when it is an ECS field (the packaged list
``definitions/data/ecs_fields.txt``, from ECS's ``ecs_flat.yml``), one of the record's own, or
under ``kibana.`` / ``signal.`` / ``rarebird.`` (the alert document's). Anything else is most
likely a typo; ``any_field`` accepts it (a custom field of one's own events).
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources

from rarebird.rules.exceptions.entries import Entry, ListEntry, NestedEntry
from rarebird.rules.exceptions.value_lists import ValueList

#: fields of Elastic's anomaly record document (``result_type: record``)
RECORD_FIELDS = frozenset({
    "job_id", "result_type", "probability", "multi_bucket_impact", "record_score",
    "initial_record_score", "bucket_span", "detector_index", "is_interim", "timestamp",
    "by_field_name", "by_field_value", "function", "function_description", "typical", "actual",
    "influencers", "influencers.influencer_field_name", "influencers.influencer_field_values",
    "anomaly_score_explanation",
})  # fmt: skip
ALERT_PREFIXES = ("kibana.", "signal.", "rarebird.", "anomaly_score_explanation.")


@functools.cache
def ecs_fields() -> frozenset[str]:
    """The ECS field names (flat), as packaged."""
    text = (
        resources.files("rarebird.definitions")
        .joinpath("data", "ecs_fields.txt")
        .read_text(encoding="utf-8")
    )
    return frozenset(line for line in text.splitlines() if line and not line.startswith("#"))


def known_field(name: str) -> bool:
    """Whether an entry on ``name`` can ever match an anomaly record or its alert.

    >>> [known_field(f) for f in ("user.name", "usr.name", "record_score", "kibana.alert.uuid")]
    [True, False, True, True]
    """
    return name in ecs_fields() or name in RECORD_FIELDS or name.startswith(ALERT_PREFIXES)


def suggest(name: str) -> str | None:
    """The known field closest to ``name`` (``usr.name`` -> ``user.name``), if any is close."""
    near = difflib.get_close_matches(name, sorted(ecs_fields() | RECORD_FIELDS), n=1, cutoff=0.75)
    return near[0] if near else None


def _flat(entries: Iterable[Entry], parent: str = "") -> Iterable[tuple[str, Entry]]:
    for entry in entries:
        if isinstance(entry, NestedEntry):
            yield from _flat(entry.entries, f"{parent}{entry.field}.")
        else:
            yield f"{parent}{entry.field}", entry


def check_entries(
    entries: Sequence[Entry], value_lists: Mapping[str, ValueList], *, any_field: bool = False
) -> None:
    """Raise :class:`ValueError` for an entry on an unknown field (unless ``any_field``) or an
    ``in-list`` entry naming a value list the store does not hold."""
    for name, entry in _flat(entries):
        if not any_field and not known_field(name):
            near = suggest(name)
            hint = f"did you mean {near}? " if near else ""
            raise ValueError(
                f"{name!r} is not an ECS field nor a field of the anomaly record or its alert; "
                f"{hint}(--any-field accepts it anyway)"
            )
        if isinstance(entry, ListEntry) and entry.list_id not in value_lists:
            known = ", ".join(sorted(value_lists)) or "none"
            raise ValueError(
                f"no value list {entry.list_id!r} (import it first: rarebird value-lists import "
                f"FILE --id {entry.list_id}; lists in the store: {known})"
            )
