"""Who ran a process: numeric ids to names, and which identity is the job's ``user.name``.

Raw telemetry (auditd, osquery) carries numeric ids. Names come, in this order, from the
telemetry itself (auditd's ENRICHED format, Laurel's ``UID``), from a ``passwd(5)`` /
``group(5)`` file the user names (``--passwd``, ``--group``), for id 0 from Linux itself
(``root``), or not at all: ``user.name`` is then absent and the detector drops the event, as
Elastic does with a document without its by-field. rarebird never reads the machine's own ``/etc/passwd`` behind the user's back: the
log usually comes from another host.

Identity (``--identity``): Elastic's ``user.name`` is the real uid. After ``sudo`` that is
``root``, and the person is only in ``user.audit.name`` (the login uid, ``auid``). With
``identity="login"`` the login user becomes ``user.name`` (and ``user.id``), so a team can model
the human behind sudo; the real user moves to ``process.real_user.*`` so both stay visible. An
event without a login user (daemons, ``auid`` unset) keeps its real user.

Every format's reader maps the record as Elastic does (``user.*`` the real user,
``user.audit.*`` the login user); :func:`as_login_identity` then applies the login identity to
the events of every format, on every path (:func:`~rarebird.sources.registry.open_format`,
which both file reading and the chunk parser of ``serve`` go through).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache

from rarebird.errors import InputError, ReadStats
from rarebird.events import ProcessEvent
from rarebird.sources.base import Source, SourceOptions

#: ids (and names) that mean "not set" (auid/ses of processes started outside a login session)
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
#: the name of id 0, user and group, on Linux
ROOT = "root"


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
    ids; neither is a name. Id 0 is ``root`` on every Linux system (user and group), so it is
    named even without a table: a RAW-format log (no names) still models root's commands, as
    Auditbeat, which resolves ids on the host, would name them.

    >>> resolved_name('alice', '1000', {}), resolved_name('unknown(7)', '7', {'7': 'bob'})
    ('alice', 'bob')
    >>> resolved_name(None, '0', {}), resolved_name(None, '1000', {}), resolved_name(None, '0', {'0': 'toor'})
    ('root', None, 'toor')
    """
    if ident is None or ident in UNSET_IDS:
        return None
    if enriched and enriched != "unset" and not enriched.startswith("unknown("):
        return enriched
    return table.get(ident) or (ROOT if ident == "0" else None)


#: Fields :func:`as_login_identity` rewrites: a prefilter condition on them cannot be tested
#: on the record as written.
LOGIN_FIELDS = frozenset({"user.name", "user.id", "process.real_user.name", "process.real_user.id"})


def has_login_session(event: ProcessEvent) -> bool:
    """True when the event names a login user: a login id that is set, or (without an id) a
    login name that is set. Daemons and processes started outside a login have neither."""
    if event.user_audit_id is not None:
        return event.user_audit_id not in UNSET_IDS
    return event.user_audit_name is not None and event.user_audit_name not in UNSET_IDS


def as_login_identity(event: ProcessEvent) -> ProcessEvent:
    """The event as ``identity="login"`` models it: the login user (``user.audit.*``) as
    ``user.*``, the account (``user.*``) in ``process.real_user.*``.

    The one place the login identity is applied, to every format alike. An event without a
    login session keeps its real user; so does one that already names a real user (a document
    written with the login identity). A login user whose name is unknown (an id that no
    passwd file names) gives an event without ``user.name``, which the job counts as missing
    its by-field rather than model as the account.

    >>> from datetime import UTC, datetime
    >>> ev = ProcessEvent(timestamp=datetime(2026, 1, 5, tzinfo=UTC), user_name="root",
    ...                   user_id="0", user_audit_name="alice", user_audit_id="1000")
    >>> login = as_login_identity(ev)
    >>> login.user_name, login.user_id, login.get("process.real_user.name")
    ('alice', '1000', ('root',))
    """
    extra = event.extra
    if (
        not has_login_session(event)
        or "process.real_user.name" in extra
        or "process.real_user.id" in extra
    ):
        return event
    moved = dict(extra)
    if event.user_id is not None:
        moved["process.real_user.id"] = (event.user_id,)
    if event.user_name is not None:
        moved["process.real_user.name"] = (event.user_name,)
    name = event.user_audit_name
    return replace(
        event,
        user_id=event.user_audit_id,
        user_name=None if name in UNSET_IDS else name,
        extra=moved,
    )


def reader_options(options: SourceOptions) -> SourceOptions:
    """The options a format's reader gets: with the login identity, the prefilter's conditions
    on the fields it rewrites are dropped (the reader sees the record as written, and must not
    skip a record whose login user is wanted)."""
    if options.identity == "user":
        return options
    return replace(options, prefilter=options.prefilter.without(LOGIN_FIELDS))


def with_identity(source: Source, identity: str) -> Source:
    """``source`` with ``identity`` applied to every event it yields."""
    return source if identity == "user" else LoginIdentitySource(source)


class LoginIdentitySource:
    """A source whose events are given the login identity (:func:`as_login_identity`)."""

    def __init__(self, source: Source) -> None:
        self.source = source

    @property
    def name(self) -> str:
        return self.source.name

    @property
    def stats(self) -> ReadStats:
        return self.source.stats

    def __iter__(self) -> Iterator[ProcessEvent]:
        return map(as_login_identity, self.source)
