"""The engine's own position, saved with every commit of a live service (versioned JSON)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson

from rarebird.errors import StateError

STATE_VERSION = 1


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

    def to_doc(self) -> dict[str, Any]:
        return {"version": STATE_VERSION, **asdict(self)}

    def to_json(self) -> str:
        return orjson.dumps(self.to_doc()).decode()

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> EngineState:
        doc = dict(doc)
        version = doc.pop("version", None)
        if version != STATE_VERSION:
            raise StateError(
                f"the service state is version {version}; this rarebird reads "
                f"version {STATE_VERSION}"
            )
        return cls(**doc)

    @classmethod
    def from_json(cls, text: str) -> EngineState:
        return cls.from_doc(orjson.loads(text))
