"""Who ran a process: numeric ids to names, and which identity is the job's ``user.name``.

Raw telemetry (auditd, osquery) carries numeric ids. Names come, in this order, from the
telemetry itself (auditd's ENRICHED format, Laurel's ``UID``), from a ``passwd(5)`` /
``group(5)`` file the user names (``--passwd``, ``--group``), or not at all: ``user.name`` is
then absent and the detector drops the event, as Elastic does with a document without its
by-field. rarebird never reads the machine's own ``/etc/passwd`` behind the user's back: the
log usually comes from another host.

Identity (``--identity``): Elastic's ``user.name`` is the real uid. After ``sudo`` that is
``root``, and the person is only in ``user.audit.name`` (the login uid, ``auid``). With
``identity="login"`` the login user becomes ``user.name`` (and ``user.id``), so a team can model
the human behind sudo; the real user moves to ``process.real_user.*`` so both stay visible. An
event without a login user (daemons, ``auid`` unset) keeps its real user.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from rarebird.errors import InputError
from rarebird.events import ProcessEvent

IDENTITIES = ("user", "login")

#: ids that mean "not set" (auid/ses of processes started outside a login session)
UNSET_IDS = frozenset({"4294967295", "-1", "unset"})


@dataclass(frozen=True, slots=True)
class Accounts:
    """uid -> user name and gid -> group name, from passwd/group files (possibly empty)."""

    users: Mapping[str, str] = field(default_factory=dict)
    groups: Mapping[str, str] = field(default_factory=dict)

    def user(self, uid: str | None) -> str | None:
        return None if uid is None else self.users.get(uid)

    def group(self, gid: str | None) -> str | None:
        return None if gid is None else self.groups.get(gid)


NO_ACCOUNTS = Accounts()


def load_accounts(passwd: str | None, group: str | None) -> Accounts:
    """Read the passwd and group files (either may be None). Raises InputError if unreadable."""
    if passwd is None and group is None:
        return NO_ACCOUNTS
    users = _read_db(passwd, _mtime(passwd)) if passwd else {}
    groups = _read_db(group, _mtime(group)) if group else {}
    return Accounts(users, groups)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None


@lru_cache(maxsize=16)
def _read_db(path: str, _mtime: float) -> dict[str, str]:
    """``name:x:id:...`` lines -> {id: name}; the first name of an id wins (like getpwuid)."""
    out: dict[str, str] = {}
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) < 3 or not parts[0] or line.startswith(("#", "+", "-")):
                    continue
                ident = parts[2].strip()
                if ident.isdigit():
                    out.setdefault(str(int(ident)), parts[0])
    except OSError as exc:
        raise InputError(path, exc.strerror or str(exc)) from None
    return out


def resolved_name(enriched: str | None, ident: str | None, table: Mapping[str, str]) -> str | None:
    """A name for ``ident``: the enriched one when it is a real name, else the table's.

    auditd writes ``unknown(1234)`` when it could not resolve an id, and ``unset`` for unset
    ids; neither is a name.

    >>> resolved_name('alice', '1000', {}), resolved_name('unknown(7)', '7', {'7': 'bob'})
    ('alice', 'bob')
    """
    if ident is None or ident in UNSET_IDS:
        return None
    if enriched and enriched != "unset" and not enriched.startswith("unknown("):
        return enriched
    return table.get(ident)


@dataclass(frozen=True, slots=True)
class Person:
    """The identity fields of one event, before the identity choice."""

    user_id: str | None
    user_name: str | None
    audit_id: str | None
    audit_name: str | None


def choose_identity(
    person: Person, identity: str
) -> tuple[str | None, str | None, dict[str, tuple[str, ...]]]:
    """``(user.id, user.name, extra fields)`` for the chosen identity.

    >>> p = Person("0", "root", "1000", "alice")
    >>> choose_identity(p, "user")
    ('0', 'root', {})
    >>> choose_identity(p, "login")
    ('1000', 'alice', {'process.real_user.id': ('0',), 'process.real_user.name': ('root',)})
    """
    if identity == "user" or person.audit_id is None or person.audit_id in UNSET_IDS:
        return person.user_id, person.user_name, {}
    if identity != "login":
        raise ValueError(f"unknown identity {identity!r} (expected one of {IDENTITIES})")
    extra: dict[str, tuple[str, ...]] = {}
    if person.user_id is not None:
        extra["process.real_user.id"] = (person.user_id,)
    if person.user_name is not None:
        extra["process.real_user.name"] = (person.user_name,)
    return person.audit_id, person.audit_name, extra


def check_identity(identity: str) -> str:
    """Validate ``SourceOptions.identity``."""
    if identity not in IDENTITIES:
        raise ValueError(f"unknown identity {identity!r} (expected one of {IDENTITIES})")
    return identity


def as_login_identity(event: ProcessEvent) -> ProcessEvent:
    """The event with the login user (``user.audit.*``, the person behind ``sudo``) as
    ``user.*`` and the account in ``process.real_user.*``, as ``--identity login`` asks.
    Sources that apply the choice themselves (raw auditd) are left as they are; so is an event
    without a login user."""
    audit = event.user_audit_name
    if (
        audit is None
        or audit in UNSET_NAMES
        or audit == event.user_name
        or "process.real_user.name" in event.extra
    ):
        return event
    extra = dict(event.extra)
    if event.user_name is not None:
        extra["process.real_user.name"] = (event.user_name,)
    if event.user_id is not None:
        extra["process.real_user.id"] = (event.user_id,)
    return replace(event, user_name=audit, user_id=event.user_audit_id, extra=extra)


#: Login names that mean "no login session".
UNSET_NAMES = frozenset({"unset", "-1", "4294967295"})
