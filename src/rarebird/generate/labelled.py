"""A labelled sample fleet for backtests (``rarebird generate --profile labelled --labels FILE``).

28 days (by default) of a 30-host fleet's process starts, as ECS documents (Auditbeat's shape:
``user.*`` the real user, ``user.audit.*`` the login user), every discovery run labelled:

- ``service_monitoring``: the ``monitor`` account runs ``ss``/``netstat`` every 15 minutes on
  every host but the lab host; ``nagios`` runs ``netstat -tlnp`` every 30 minutes on the database
  hosts; ``root``'s cron runs ``netstat -s`` once a day on every monitored host;
- ``admin_troubleshooting``: three admins (``alice``, ``bob``, ``carol``) run one or two tools at
  a time on working days, irregularly (about 40 runs);
- ``new_hire``: ``dave`` joins in the last fortnight and runs ``netstat`` a few times;
- ``attack_compromised_1`` / ``attack_compromised_2``: two compromised accounts (the human
  ``erin``, who never ran these tools, and the web server's ``www-data``) each run a burst of
  several discovery tools within minutes (atomic-red-team T1049/T1016/T1135 command lines);
- ``attack_sudo``: an attacker behind sudo: ``user.name`` is ``root`` (who runs ``netstat -s``
  every day), the login user ``frank`` a regular human who never runs these tools;
- ``attack_host_first``: root's reconnaissance on ``lab-01``, a host on which no discovery tool
  has ever run (nothing about ``root`` is rare); root works on it every day (ordinary commands).

Ordinary commands (shells, ``sshd``, ``ls``) are sprinkled in so the datafeed has something to
drop. Everything is CONSTRUCTED, seeded and deterministic: the same seed writes the same bytes.
:func:`labelled_fleet` yields ``(document, label)`` pairs in time order (label None for events
that are not discovery runs); :func:`write_labels` writes the labels CSV evaluate reads.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from rarebird.timeutil import to_epoch_ms

DEFAULT_START = datetime(2026, 2, 2, tzinfo=UTC)  # a Monday
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
LABEL_COLUMNS = ("@timestamp", "host.name", "user.name", "process.name", "label")


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    uid: int
    login: str | None  # the login user (auid); None: unset (daemons, cron)
    parent: str


ROOT_CRON = Person("root", 0, None, "cron")
MONITOR = Person("monitor", 995, None, "sh")
NAGIOS = Person("nagios", 996, None, "nrpe")
ADMINS = (Person("alice", 1001, "alice", "bash"), Person("bob", 1002, "bob", "bash"),
          Person("carol", 1003, "carol", "bash"))  # fmt: skip
NEW_HIRE = Person("dave", 1004, "dave", "bash")
ERIN = Person("erin", 1005, "erin", "bash")
WWW = Person("www-data", 33, None, "sh")
SUDO_ROOT = Person("root", 0, "frank", "sudo")
LAB_ROOT = Person("root", 0, "root", "bash")
HUMANS = (
    *ADMINS,
    Person("frank", 1006, "frank", "bash"),
    ERIN,
    Person("gina", 1007, "gina", "bash"),
)

TROUBLESHOOT = ("ss -tunap", "netstat -rn", "route -n", "ss -lntp", "netstat -tulpn")
BURST_1 = ("ss -antp", "netstat -ant", "route -n", "showmount -e")
BURST_2 = ("netstat -ant", "ss -aunp", "showmount -e 10.0.0.5")
BURST_SUDO = ("ss -tunap", "netstat -rn", "route -n")
BURST_LAB = ("ss -tunap", "netstat -antp")
ORDINARY = ("ls -la", "grep -r error /var/log/app", "vim notes.txt", "systemctl status app",
            "ssh build-01", "man ss")  # fmt: skip


@dataclass(frozen=True, slots=True)
class LabelledOptions:
    days: int = 28
    hosts: int = 30
    start: datetime = DEFAULT_START
    seed: int = 7

    def __post_init__(self) -> None:
        if self.days < 21 or self.hosts < 8:
            raise ValueError("the labelled fleet needs at least 21 days and 8 hosts")
        if self.start.tzinfo is None:
            raise ValueError("start must be a UTC-aware datetime")


@dataclass(frozen=True, slots=True)
class _Run:
    ms: int
    order: int
    host: str
    who: Person
    line: str
    label: str | None


def host_names(count: int) -> list[str]:
    """``web-01`` ... ``db-01`` ...; the last one is ``lab-01`` (never monitored)."""
    roles = ("web", "app", "db", "build", "bastion")
    seen: dict[str, int] = {}
    out = []
    for i in range(count - 1):
        role = roles[i % len(roles)]
        seen[role] = seen.get(role, 0) + 1
        out.append(f"{role}-{seen[role]:02d}")
    return [*out, "lab-01"]


def _runs(options: LabelledOptions) -> list[_Run]:
    rng = random.Random(options.seed)
    hosts = host_names(options.hosts)
    monitored = hosts[:-1]
    db_hosts = [h for h in monitored if h.startswith("db-")]
    start_ms = to_epoch_ms(options.start)
    runs: list[_Run] = []

    def add(ms: int, host: str, who: Person, line: str, label: str | None) -> None:
        runs.append(_Run(ms, len(runs), host, who, line, label))

    for day in range(options.days):
        day_ms = start_ms + day * DAY_MS
        weekday = (options.start + timedelta(days=day)).weekday() < 5
        for h in monitored:
            offset = rng.randrange(15 * MINUTE_MS)
            for slot in range(96):
                line = "ss -tunap" if slot % 2 else "netstat -tunap"
                add(day_ms + slot * 15 * MINUTE_MS + offset, h, MONITOR, line, "service_monitoring")
            add(day_ms + 3 * HOUR_MS + rng.randrange(HOUR_MS), h, ROOT_CRON, "netstat -s",
                "service_monitoring")  # fmt: skip
        for h in db_hosts:
            offset = rng.randrange(30 * MINUTE_MS)
            for slot in range(48):
                add(day_ms + slot * 30 * MINUTE_MS + offset, h, NAGIOS, "netstat -tlnp",
                    "service_monitoring")  # fmt: skip
        for admin in ADMINS:
            if weekday and rng.random() < 0.45:
                ms = day_ms + rng.randrange(8, 18) * HOUR_MS + rng.randrange(HOUR_MS)
                host = rng.choice(monitored)
                for line in rng.sample(TROUBLESHOOT, rng.randint(1, 2)):
                    add(ms, host, admin, line, "admin_troubleshooting")
                    ms += rng.randrange(30_000, 240_000)
        for _ in range(40):  # ordinary work, which the datafeed drops
            who = rng.choice(HUMANS)
            add(day_ms + rng.randrange(DAY_MS), rng.choice(monitored), who, rng.choice(ORDINARY),
                None)  # fmt: skip
    # the lab host: a few ordinary commands a day, no discovery tool (its own generator, so the
    # rest of the fleet is what it was before the lab host had any activity)
    lab_rng = random.Random(options.seed * 7919 + 1)
    for day in range(options.days):
        for _ in range(3):
            add(start_ms + day * DAY_MS + lab_rng.randrange(DAY_MS), hosts[-1], LAB_ROOT,
                lab_rng.choice(ORDINARY), None)  # fmt: skip
    last = options.days

    def at(day: int, hour: int, minute: int) -> int:
        return start_ms + day * DAY_MS + hour * HOUR_MS + minute * MINUTE_MS + 17_000

    # the new hire: joins in the last fortnight, a few runs on two days
    for day, hour in ((last - 11, 10), (last - 11, 15), (last - 6, 11)):
        add(at(day, hour, 12), monitored[1], NEW_HIRE, "netstat -tulpn", "new_hire")
    attacks = (
        (at(last - 8, 2, 13), monitored[1], ERIN, BURST_1, "attack_compromised_1"),
        (at(last - 5, 14, 5), monitored[0], WWW, BURST_2, "attack_compromised_2"),
        (at(last - 3, 23, 40), monitored[4], SUDO_ROOT, BURST_SUDO, "attack_sudo"),
        (at(last - 2, 4, 22), hosts[-1], LAB_ROOT, BURST_LAB, "attack_host_first"),
    )
    for ms, host, who, lines, label in attacks:
        for line in lines:
            add(ms, host, who, line, label)
            ms += rng.randrange(20_000, 70_000)
    runs.sort(key=lambda r: (r.ms, r.order))
    return runs


def _document(run: _Run, seq: int) -> dict[str, Any]:
    args = run.line.split()
    who = run.who
    stamp = datetime.fromtimestamp(run.ms / 1000, UTC).isoformat(timespec="milliseconds")
    audit = {"id": "unset"} if who.login is None else {"name": who.login}
    return {
        "@timestamp": stamp.replace("+00:00", "Z"),
        "event": {
            "action": "executed",
            "category": ["process"],
            "kind": "event",
            "module": "auditd",
            "dataset": "auditd.log",
            "type": ["start"],
        },  # fmt: skip
        "host": {
            "name": run.host,
            "hostname": run.host,
            "os": {"type": "linux", "family": "debian", "platform": "ubuntu"},
        },  # fmt: skip
        "process": {
            "args": args,
            "executable": f"/usr/bin/{args[0]}",
            "name": args[0],
            "parent": {"name": who.parent},
            "pid": 1000 + seq % 60000,
        },  # fmt: skip
        "user": {"id": str(who.uid), "name": who.name, "audit": audit},
        "auditd": {"sequence": seq},
    }


def labelled_fleet(
    options: LabelledOptions | None = None,
) -> Iterator[tuple[dict[str, Any], str | None]]:
    """The fleet's documents in time order, each with its label (None: not a discovery run)."""
    for seq, run in enumerate(_runs(options or LabelledOptions())):
        yield _document(run, seq), run.label


def write_labels(rows: Iterable[tuple[dict[str, Any], str | None]], out: TextIO) -> int:
    """The labels CSV (``@timestamp,host.name,user.name,process.name,label``) of the labelled
    documents among ``rows``; ``user.name`` is Elastic's (the real user). Returns the rows written."""
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(LABEL_COLUMNS)
    n = 0
    for doc, label in rows:
        if label is None:
            continue
        writer.writerow([doc["@timestamp"], doc["host"]["name"], doc["user"]["name"],
                         doc["process"]["name"], label])  # fmt: skip
        n += 1
    return n
