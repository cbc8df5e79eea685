"""The generated events as ECS documents (Elastic Defend or Auditbeat shaped), and writing
documents or events as NDJSON."""

from __future__ import annotations

import gzip
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

import orjson

from rarebird.events import ProcessEvent
from rarebird.generate.fleet import Command, Host, User, random_hex
from rarebird.timeutil import EPOCH

ECS_VERSION = "8.11.0"
AGENT_VERSION = "8.15.3"


@dataclass(slots=True)
class Pids:
    rng: random.Random
    next_pid: dict[str, int] = field(default_factory=dict)

    def take(self, host: str) -> int:
        pid = self.next_pid.get(host, 1000 + self.rng.randrange(20000))
        pid += 1 + self.rng.randrange(40)
        if pid > 4_000_000:
            pid = 1000
        self.next_pid[host] = pid
        return pid


def _iso(ms: int) -> str:
    when = EPOCH + timedelta(milliseconds=ms)
    return f"{when:%Y-%m-%dT%H:%M:%S}.{ms % 1000:03d}Z"


class Renderer:
    """Builds ECS documents; shared sub-objects are built once per host."""

    def __init__(self, hosts: list[Host], rng: random.Random, *, rich: bool) -> None:
        self.rng = rng
        self.rich = rich
        self.seq = 0
        self._host_docs = {h.name: self._host_doc(h, rich) for h in hosts}
        self._agent_docs = {h.name: self._agent_doc(h) for h in hosts}

    @staticmethod
    def _host_doc(h: Host, rich: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "hostname": h.name,
            "id": h.id,
            "ip": [h.ip],
            "name": h.name,
            "os": {
                "family": h.os_family,
                "name": "Linux" if h.agent == "endpoint" else h.os_name,
                "platform": h.os_platform,
                "type": "linux",
                "version": h.os_version,
            },
        }
        if rich:
            doc["architecture"] = "x86_64"
            doc["mac"] = [h.mac]
            doc["os"]["full"] = f"{h.os_name} {h.os_version}"
            doc["os"]["kernel"] = h.kernel
        return doc

    @staticmethod
    def _agent_doc(h: Host) -> dict[str, Any]:
        return {
            "id": h.agent_id,
            "type": "endpoint" if h.agent == "endpoint" else "auditbeat",
            "version": AGENT_VERSION,
        }

    def render(
        self,
        ms: int,
        host: Host,
        user: User,
        cmd: Command,
        pid: int,
        ppid: int,
        parent: str,
        *,
        end: bool = False,
        cwd: str | None = None,
    ) -> dict[str, Any]:
        self.seq += 1
        stamp = _iso(ms)
        args = list(cmd.args)
        cwd = cwd or user.home
        group = {"id": str(user.uid), "name": user.name if user.uid else "root"}
        if host.agent == "auditbeat":
            return {
                "@timestamp": stamp,
                "agent": self._agent_docs[host.name],
                "auditd": {
                    "data": {
                        "argc": str(len(args)),
                        "syscall": "execve",
                        "tty": "(none)" if user.kind == "service" else "pts0",
                    },
                    "result": "success",
                    "sequence": self.seq,
                    "session": "unset" if user.kind == "service" else str(1 + user.uid % 97),
                    "summary": {
                        "action": "executed",
                        "actor": {"primary": user.name, "secondary": user.name},
                        "how": cmd.executable,
                        "object": {"primary": cmd.executable, "type": "file"},
                    },
                },
                "ecs": {"version": ECS_VERSION},
                "event": {
                    "action": "executed",
                    "category": ["process"],
                    "kind": "event",
                    "module": "auditd",
                    "dataset": "auditd.log",
                    "outcome": "success",
                    "type": ["start"],
                },
                "group": group,
                "host": self._host_docs[host.name],
                "process": {
                    "args": args,
                    "args_count": len(args),
                    "executable": cmd.executable,
                    "name": cmd.name,
                    "parent": {"pid": ppid},
                    "pid": pid,
                    "title": " ".join(args),
                    "working_directory": cwd,
                },
                "service": {"type": "auditd"},
                "user": {
                    "audit": {"id": str(user.uid), "name": user.name}
                    if user.kind != "service"
                    else {"id": "unset"},
                    "id": str(user.uid),
                    "name": user.name,
                },
            }
        doc: dict[str, Any] = {
            "@timestamp": stamp,
            "agent": self._agent_docs[host.name],
            "ecs": {"version": ECS_VERSION},
            "event": {
                "action": "end" if end else "exec",
                "category": ["process"],
                "dataset": "endpoint.events.process",
                "kind": "event",
                "module": "endpoint",
                "type": ["end"] if end else ["start"],
            },
            "group": group,
            "host": self._host_docs[host.name],
            "process": {
                "args": args,
                "args_count": len(args),
                "command_line": " ".join(args),
                "entity_id": random_hex(self.rng, 12),
                "executable": cmd.executable,
                "name": cmd.name,
                "parent": {"executable": f"/usr/bin/{parent}", "name": parent, "pid": ppid},
                "pid": pid,
                "working_directory": cwd,
            },
            "user": {"id": str(user.uid), "name": user.name},
        }
        if end:
            doc["process"]["exit_code"] = 0
        if self.rich:  # what else Elastic Defend sends
            doc["data_stream"] = {
                "dataset": "endpoint.events.process",
                "namespace": "default",
                "type": "logs",
            }
            doc["elastic"] = {"agent": {"id": host.agent_id}}
            event = doc["event"]
            event["created"] = stamp
            event["id"] = random_hex(self.rng, 10)
            event["sequence"] = self.seq
            process = doc["process"]
            process["interactive"] = user.kind in ("human", "admin")
            process["parent"].update(
                {
                    "args": [parent],
                    "args_count": 1,
                    "entity_id": random_hex(self.rng, 12),
                }
            )
            process["entry_leader"] = {
                "entity_id": random_hex(self.rng, 12),
                "executable": "/usr/sbin/sshd",
                "name": "sshd",
                "pid": 812,
            }
        return doc


class ByteSink(Protocol):
    """Anything bytes can be written to: a binary file, a ``GzipFile``, a socket file."""

    def write(self, data: bytes, /) -> int: ...


def write_ecs(items: Iterable[dict[str, Any] | ProcessEvent], out: ByteSink) -> int:
    """Write documents (or events, as ECS) as NDJSON; returns how many were written."""
    count = 0
    batch: list[bytes] = []
    for item in items:
        doc = item.to_ecs() if isinstance(item, ProcessEvent) else item
        batch.append(orjson.dumps(doc))
        count += 1
        if len(batch) >= 2000:
            out.write(b"\n".join(batch) + b"\n")
            batch.clear()
    if batch:
        out.write(b"\n".join(batch) + b"\n")
    return count


def write_ecs_file(path: str, items: Iterable[dict[str, Any] | ProcessEvent]) -> int:
    """:func:`write_ecs` to a file; a ``.gz`` name is gzip-compressed (reproducibly: no mtime)."""
    if path.endswith(".gz"):
        with (
            open(path, "wb") as raw,
            gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as gz,
        ):
            return write_ecs(items, gz)
    with open(path, "wb") as f:
        return write_ecs(items, f)
