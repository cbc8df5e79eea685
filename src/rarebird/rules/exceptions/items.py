"""Exception items and lists (Elastic's ``exception_list_item`` and ``exception_list``): matching
a document, and reading and writing Elastic's documents."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from rarebird.documents import field_values
from rarebird.errors import DefinitionError
from rarebird.rules.exceptions.allow import AllowList
from rarebird.rules.exceptions.entries import Entry, MatchContext, entry_from_elastic
from rarebird.rules.exceptions.values import scalar_equals
from rarebird.rules.exceptions.windows import ScheduleWindow
from rarebird.rules.exceptions.wording import describe_entry
from rarebird.timeutil import iso, parse_timestamp

#: Kibana's exception list types (``exceptionListType``)
LIST_KINDS = (
    "detection", "rule_default", "endpoint", "endpoint_trusted_apps", "endpoint_events",
    "endpoint_host_isolation_exceptions", "endpoint_blocklists", "endpoint_trusted_devices",
)  # fmt: skip


@dataclass(frozen=True)
class ExceptionItem:
    """One exception item (Elastic ``exception_list_item``), with rarebird's extra conditions."""

    item_id: str
    list_id: str
    name: str
    entries: tuple[Entry, ...]
    description: str = ""
    id: str = ""
    namespace_type: str = "single"
    os_types: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    comments: tuple[dict[str, Any], ...] = ()
    expire_time: datetime | None = None
    windows: tuple[ScheduleWindow, ...] = ()
    allow: AllowList | None = None
    created_at: str = ""
    created_by: str = "rarebird"
    updated_at: str = ""
    updated_by: str = "rarebird"
    #: keys of the Elastic document rarebird does not model, kept for round-trips
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_elastic_only(self) -> bool:
        """True when Kibana would apply this item exactly as rarebird does."""
        return not self.windows and self.allow is None

    def expired(self, now: datetime) -> bool:
        return self.expire_time is not None and self.expire_time <= now

    def matches(self, doc: Mapping[str, Any], ctx: MatchContext) -> bool:
        if not self.entries and not self.windows and self.allow is None:
            return False
        for entry in self.entries:
            if not entry.holds(doc, ctx):
                return False
        if self.os_types and not any(
            scalar_equals(v, os) or (isinstance(v, str) and v.lower() == os.lower())
            for os in self.os_types
            for f in ("host.os.type", "host.os.name.caseless")
            for v in field_values(doc, f)
        ):
            return False
        if self.windows and (
            ctx.when is None or not any(w.contains(ctx.when) for w in self.windows)
        ):
            return False
        if self.allow is not None:
            events = ctx.events() if ctx.events is not None else ()
            if not events or not all(self.allow.allows(ev) for ev in events):
                return False
        return True

    def to_elastic(self) -> dict[str, Any]:
        doc: dict[str, Any] = dict(self.extra)
        meta = dict(doc.get("meta") or {})
        extension: dict[str, Any] = {}
        if self.windows:
            extension["windows"] = [w.to_json() for w in self.windows]
        if self.allow is not None:
            extension["allow"] = self.allow.to_json()
        if extension:
            meta["rarebird"] = extension
        else:
            meta.pop("rarebird", None)
        doc.update(
            {
                "comments": list(self.comments),
                "created_at": self.created_at,
                "created_by": self.created_by,
                "description": self.description,
                "entries": [e.to_elastic() for e in self.entries],
                "id": self.id or self.item_id,
                "item_id": self.item_id,
                "list_id": self.list_id,
                "meta": meta,
                "name": self.name,
                "namespace_type": self.namespace_type,
                "os_types": list(self.os_types),
                "tags": list(self.tags),
                "type": "simple",
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
            }
        )
        if self.expire_time is not None:
            doc["expire_time"] = iso(self.expire_time)
        return doc

    @classmethod
    def from_elastic(cls, data: Mapping[str, Any], where: str = "item", path: str = "<exceptions>") -> ExceptionItem:  # fmt: skip
        def fail(key: str, message: str) -> DefinitionError:
            return DefinitionError(path, f"{where}.{key}", message)

        for key in ("item_id", "list_id", "name"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise fail(key, "is required (a non-empty string)")
        raw_entries = data.get("entries")
        if not isinstance(raw_entries, list):
            raise fail("entries", "expected a list")
        entries = tuple(
            entry_from_elastic(e, f"{where}.entries[{i}]", path) for i, e in enumerate(raw_entries)
        )
        meta = data.get("meta") or {}
        if not isinstance(meta, Mapping):
            raise fail("meta", "expected an object")
        ext = meta.get("rarebird") or {}
        if not isinstance(ext, Mapping):
            raise fail("meta.rarebird", "expected an object")
        windows_raw = ext.get("windows") or []
        if not isinstance(windows_raw, list):
            raise fail("meta.rarebird.windows", "expected a list")
        windows = tuple(
            ScheduleWindow.from_json(w, f"{where}.meta.rarebird.windows[{i}]", path)
            for i, w in enumerate(windows_raw)
        )
        allow = None
        allow_raw = ext.get("allow")
        if allow_raw is not None:
            if not isinstance(allow_raw, Mapping):
                raise fail("meta.rarebird.allow", "expected an object")
            parents = allow_raw.get("parents") or []
            scripts = allow_raw.get("scripts") or []
            if not all(isinstance(p, str) for p in [*parents, *scripts]):
                raise fail("meta.rarebird.allow", "parents and scripts are lists of patterns")
            allow = AllowList(tuple(parents), tuple(scripts))
        if not entries and not windows and allow is None:
            raise fail("entries", "an item needs at least one entry")
        expire = None
        if data.get("expire_time"):
            try:
                expire = parse_timestamp(data["expire_time"])
            except ValueError as exc:
                raise fail("expire_time", str(exc)) from None
        os_types = data.get("os_types") or []
        if not isinstance(os_types, list) or not all(isinstance(o, str) for o in os_types):
            raise fail("os_types", "expected a list of strings")
        tags = data.get("tags") or []
        comments = data.get("comments") or []
        modelled = {
            "comments", "created_at", "created_by", "description", "entries", "id", "item_id",
            "list_id", "name", "namespace_type", "os_types", "tags", "type", "updated_at",
            "updated_by", "expire_time",
        }  # fmt: skip
        extra = {k: v for k, v in data.items() if k not in modelled}
        return cls(
            item_id=data["item_id"],
            list_id=data["list_id"],
            name=data["name"],
            entries=entries,
            description=str(data.get("description") or ""),
            id=str(data.get("id") or data["item_id"]),
            namespace_type=str(data.get("namespace_type") or "single"),
            os_types=tuple(os_types),
            tags=tuple(str(t) for t in tags),
            comments=tuple(c for c in comments if isinstance(c, dict)),
            expire_time=expire,
            windows=windows,
            allow=allow,
            created_at=str(data.get("created_at") or ""),
            created_by=str(data.get("created_by") or "rarebird"),
            updated_at=str(data.get("updated_at") or ""),
            updated_by=str(data.get("updated_by") or "rarebird"),
            extra=extra,
        )

    def describe(self) -> str:
        """A one-line human summary of the conditions."""
        parts = [describe_entry(e) for e in self.entries]
        parts.extend(f"during {w}" for w in self.windows)
        if self.allow is not None:
            if self.allow.parents:
                parts.append(f"parent in [{', '.join(self.allow.parents)}]")
            if self.allow.scripts:
                parts.append(f"script in [{', '.join(self.allow.scripts)}]")
        if self.os_types:
            parts.append(f"os in [{', '.join(self.os_types)}]")
        return " AND ".join(parts) or "(nothing)"


@dataclass(frozen=True)
class ExceptionList:
    """An exception list container (Elastic ``exception_list``)."""

    list_id: str
    name: str
    type: str = "detection"
    description: str = ""
    id: str = ""
    namespace_type: str = "single"
    tags: tuple[str, ...] = ()
    os_types: tuple[str, ...] = ()
    immutable: bool = False
    version: int = 1
    created_at: str = ""
    created_by: str = "rarebird"
    updated_at: str = ""
    updated_by: str = "rarebird"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def to_elastic(self) -> dict[str, Any]:
        doc = dict(self.extra)
        doc.update(
            {
                "created_at": self.created_at,
                "created_by": self.created_by,
                "description": self.description,
                "id": self.id or self.list_id,
                "immutable": self.immutable,
                "list_id": self.list_id,
                "name": self.name,
                "namespace_type": self.namespace_type,
                "os_types": list(self.os_types),
                "tags": list(self.tags),
                "type": self.type,
                "updated_at": self.updated_at,
                "updated_by": self.updated_by,
                "version": self.version,
            }
        )
        return doc

    @classmethod
    def from_elastic(cls, data: Mapping[str, Any], where: str = "list", path: str = "<exceptions>") -> ExceptionList:  # fmt: skip
        for key in ("list_id", "name"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise DefinitionError(path, f"{where}.{key}", "is required (a non-empty string)")
        ltype = data.get("type") or "detection"
        if ltype not in LIST_KINDS:
            raise DefinitionError(path, f"{where}.type", f"unknown exception list type {ltype!r}")
        modelled = {
            "created_at", "created_by", "description", "id", "immutable", "list_id", "name",
            "namespace_type", "os_types", "tags", "type", "updated_at", "updated_by", "version",
        }  # fmt: skip
        version = data.get("version", 1)
        return cls(
            list_id=data["list_id"],
            name=data["name"],
            type=ltype,
            description=str(data.get("description") or ""),
            id=str(data.get("id") or data["list_id"]),
            namespace_type=str(data.get("namespace_type") or "single"),
            tags=tuple(str(t) for t in data.get("tags") or ()),
            os_types=tuple(str(t) for t in data.get("os_types") or ()),
            immutable=bool(data.get("immutable", False)),
            version=version if isinstance(version, int) else 1,
            created_at=str(data.get("created_at") or ""),
            created_by=str(data.get("created_by") or "rarebird"),
            updated_at=str(data.get("updated_at") or ""),
            updated_by=str(data.get("updated_by") or "rarebird"),
            extra={k: v for k, v in data.items() if k not in modelled},
        )
