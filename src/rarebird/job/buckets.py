"""The bucket being built: which by-field values were seen in it, how often, with which
influencer values and identities, in arrival order."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class Bucket:
    """Events gathered for the bucket being built."""

    index: int
    event_count: int = 0
    order: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    influences: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    identities: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def add(
        self, value: str, influences: dict[str, str], identities: dict[str, str] | None = None
    ) -> None:
        """One event of ``value`` (its influencer and identity values, None ones left out)."""
        self.add_many(
            value, 1, {k: (v,) for k, v in influences.items()},
            {k: (v,) for k, v in (identities or {}).items()},
        )  # fmt: skip

    def add_many(
        self,
        value: str,
        n: int,
        influences: dict[str, tuple[str, ...]],
        identities: dict[str, tuple[str, ...]],
    ) -> None:
        """``n`` events of ``value`` at once, with each field's values in arrival order (what
        :meth:`add` gives for those events one by one)."""
        if value not in self.counts:
            self.order.append(value)
            self.counts[value] = 0
            self.influences[value] = {}
        self.counts[value] += n
        mine = self.influences[value]
        for name, vs in influences.items():
            if vs:
                have = mine.setdefault(name, [])
                have.extend(v for v in vs if v not in have)
        for name, vs in identities.items():
            if vs:
                have = self.identities.setdefault(value, {}).setdefault(name, [])
                have.extend(v for v in vs if v not in have)

    def to_state(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Bucket:
        return cls(**{"identities": {}, **state})
