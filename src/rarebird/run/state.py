"""The engine's own position, saved with every commit of a live service (versioned JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from rarebird.errors import StateError

STATE_VERSION = 2
#: versions this rarebird reads (version 1 lacks the older-than-backfill counts: zero)
READS_VERSIONS = (1, 2)


@dataclass
class EngineState:
    """Where a live engine is: how far the datafeed has searched, when the rule runs next."""

    #: every event with a timestamp before this (epoch ms) has been given to the job
    frontier_ms: int | None = None
    #: the next scheduled rule run (epoch ms); None until decided
    next_run_ms: int | None = None
    #: events older than this (epoch ms) are not modelled (start-up learning window)
    backfill_from_ms: int | None = None
    #: when the service first started (ISO-8601)
    first_start: str = ""
    #: sequence number of the next pending event
    seq: int = 0
    #: end (epoch ms) of the data covered by the last model snapshot
    last_snapshot_ms: int | None = None
    #: the rule the service runs (its uuid)
    rule_uuid: str = ""
    #: input positions, by source name (each follower's own JSON state)
    sources: dict[str, Any] = field(default_factory=dict)
    #: events the datafeed matched but that were older than ``backfill_from_ms`` (not modelled)
    older_than_backfill: int = 0
    #: the newest of those (epoch ms)
    older_newest_ms: int | None = None

    def to_doc(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, **asdict(self)}

    def to_json(self) -> str:
        return orjson.dumps(self.to_doc()).decode()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EngineState:
        doc = dict(doc)
        version = doc.pop("version", None)
        if version not in READS_VERSIONS:
            raise StateError(
                f"the service state is version {version}; this rarebird reads "
                f"versions {', '.join(map(str, READS_VERSIONS))}"
            )
        return cls(**doc)

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        return cls.from_doc(orjson.loads(text))
