"""Allow-lists (rarebird's addition): parent processes and scripts whose children are expected to
run the discovery tools."""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rarebird.documents import field_values
from rarebird.rules.exceptions.values import as_text


@dataclass(frozen=True, slots=True)
class AllowList:
    """Parent processes and scripts whose children are expected to run the discovery tools."""

    parents: tuple[str, ...] = ()
    scripts: tuple[str, ...] = ()

    def allows(self, event: Mapping[str, Any]) -> bool:
        names = [as_text(v) or "" for v in field_values(event, "process.parent.name")]
        exes = [as_text(v) or "" for v in field_values(event, "process.parent.executable")]
        args = [as_text(v) or "" for v in field_values(event, "process.parent.args")]
        if any(_glob(c, pat) for pat in self.parents for c in names + exes):
            return True
        return any(_glob(c, pat) for pat in self.scripts for c in args + names + exes)

    def to_json(self) -> dict[str, Any]:
        return {"parents": list(self.parents), "scripts": list(self.scripts)}


def _glob(candidate: str, pattern: str) -> bool:
    if not candidate:
        return False
    if fnmatch.fnmatchcase(candidate, pattern):
        return True
    return "/" not in pattern and fnmatch.fnmatchcase(candidate.rsplit("/", 1)[-1], pattern)
