"""Deterministic sample telemetry: a Linux fleet's process events, as ECS documents.

Two profiles, both seeded (same options, same seed: byte-identical output):

``fleet`` (the demo)
    ``hosts`` servers (web, db, bastion, build, app...), some watched by Elastic Defend and some
    by Auditbeat's auditd module, over ``days`` days from ``start``:

    - the ``monitor`` service user runs ``ss`` from cron every 5 minutes on every host, and
      ``nagios`` runs ``netstat -tlnp`` every 10 minutes on the web and db hosts;
    - the admins (``alice``, ``bob``) troubleshoot now and then on working days
      (``route -n``, ``ss -tunap``, ``netstat -rn``...), at random working hours;
    - everyone else runs ordinary commands: shells, ``ls``, ``grep``, ``systemctl``, builds,
      database dumps, cron jobs as root, and decoys that a naive search for ``ss`` or ``route``
      would hit (``sshd``, ``ssh``, ``sss_cache``, ``ip route``, ``man ss``);
    - about 10 % of the process starts on Defend hosts have a matching ``end`` event;
    - **constructed attack**: late in the period (after about 80 % of it, day 11 of 14), the web
      server's ``www-data`` account, never seen running discovery before, runs a burst of
      discovery commands as a web shell would. The command lines are those of the
      atomic-red-team emulations of T1049 (System Network Connections Discovery), T1016 and
      T1135 (``ss -antp``, ``ss -aunp``, ``netstat -ant``, ``who -a``, ``arp -a``,
      ``showmount -e``): attack emulation command lines placed in made-up telemetry, not a
      recording of a real intrusion. :func:`attack_window` tells where it is.

    ``discovery_fraction`` sets how many ordinary commands surround the discovery ones.

``bench``
    ``events`` documents as fast as possible for throughput tests: rich Elastic Defend documents
    (about 1.4 KB each), 90 % exec and 10 % end, about ``discovery_fraction`` (2 %)
    netstat/ss/route/showmount, with the same decoys.

:func:`generate_documents` yields the ECS documents (dicts, in time order);
:func:`generate_events` yields them as :class:`~rarebird.events.ProcessEvent`, so the same
scenario can be written in another format; :func:`write_ecs` writes NDJSON.
"""

from __future__ import annotations

import gzip
import heapq
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import orjson

from rarebird.events import ProcessEvent
from rarebird.sources.ecs import event_from_document
from rarebird.timeutil import EPOCH, to_epoch_ms

PROFILES = ("fleet", "bench")
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)  # a Monday
DISCOVERY_NAMES = frozenset({"netstat", "ss", "route", "showmount"})
ECS_VERSION = "8.11.0"
AGENT_VERSION = "8.15.3"
_MINUTE = 60_000
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


@dataclass(frozen=True, slots=True)
class GeneratorOptions:
    """What to generate. ``events`` is used by the ``bench`` profile only."""

    profile: str = "fleet"
    days: int = 14
    start: datetime = DEFAULT_START
    hosts: int = 6
    users: int = 5
    discovery_fraction: float | None = None
    events: int = 1_000_000
    seed: int = 7

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}, not {self.profile!r}")
        if self.start.tzinfo is None:
            raise ValueError("start must be a UTC-aware datetime")
        if self.days < 1 or self.hosts < 1 or self.users < 0 or self.events < 0:
            raise ValueError("days and hosts must be at least 1, users and events at least 0")
        fraction = self.fraction
        if not 0 < fraction <= 1:
            raise ValueError(f"discovery fraction must be in (0, 1], not {fraction}")

    @property
    def fraction(self) -> float:
        if self.discovery_fraction is not None:
            return self.discovery_fraction
        return 0.5 if self.profile == "fleet" else 0.02


# --- the fleet -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Host:
    name: str
    role: str
    id: str
    ip: str
    mac: str
    os_family: str
    os_platform: str
    os_name: str
    os_version: str
    kernel: str
    agent: str  # "endpoint" (Elastic Defend) or "auditbeat"
    agent_id: str


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: int
    kind: str  # "human", "admin", "service", "root"
    home: str
    shell_parent: str = "bash"


@dataclass(frozen=True, slots=True)
class Command:
    args: tuple[str, ...]
    executable: str

    @property
    def name(self) -> str:
        return self.executable.rsplit("/", 1)[-1]


def _cmd(line: str, executable: str | None = None) -> Command:
    args = tuple(line.split())
    return Command(args, executable or f"/usr/bin/{args[0]}")


_OS = [
    ("debian", "ubuntu", "Ubuntu", "22.04.4 LTS (Jammy Jellyfish)", "5.15.0-119-generic"),
    ("redhat", "rhel", "Red Hat Enterprise Linux", "9.4 (Plow)", "5.14.0-427.31.1.el9_4.x86_64"),
    ("debian", "debian", "Debian GNU/Linux", "12 (bookworm)", "6.1.0-25-amd64"),
]
_ROLES = ["web", "web", "db", "bastion", "build", "app", "app", "db", "web", "cache"]
_HUMANS = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
_ADMINS = ("alice", "bob")

MONITOR = [_cmd("ss -tunap"), _cmd("ss -s")]
NAGIOS = _cmd("netstat -tlnp")
TROUBLESHOOT = [
    _cmd("route -n", "/usr/sbin/route"),
    _cmd("ss -tunap"),
    _cmd("ss -ltnp"),
    _cmd("netstat -rn"),
    _cmd("netstat -tulpn"),
    _cmd("showmount -e nfs-01", "/usr/sbin/showmount"),
]
#: Constructed: atomic-red-team T1049 / T1016 / T1135 command lines, as a web shell runs them.
ATTACK = [
    _cmd("id"),
    _cmd("uname -a"),
    _cmd("ss -antp"),
    _cmd("ss -aunp"),
    _cmd("netstat"),
    _cmd("who -a"),
    _cmd("netstat -ant"),
    _cmd("arp -a", "/usr/sbin/arp"),
    _cmd("ip addr", "/usr/sbin/ip"),
    _cmd("showmount -e 10.0.2.15", "/usr/sbin/showmount"),
]
COMMON = [
    _cmd("bash", "/usr/bin/bash"),
    _cmd("ls -la"),
    _cmd("grep -i error /var/log/syslog"),
    _cmd("cat /etc/hosts"),
    _cmd("tail -n 100 /var/log/syslog"),
    _cmd("systemctl status nginx"),
    _cmd("journalctl -u sshd --since today"),
    _cmd("ps aux"),
    _cmd("df -h"),
    _cmd("free -m"),
    _cmd("uptime"),
    _cmd("vim /etc/hosts"),
    _cmd("less /var/log/auth.log"),
    _cmd("sudo -i"),
    _cmd("top -b -n 1"),
    _cmd("find /var/log -name *.gz -mtime +7"),
    _cmd("du -sh /var/lib"),
]
#: Decoys: names or arguments that hold "ss" or "route" without being discovery commands.
DECOYS = [
    _cmd("ip route show", "/usr/sbin/ip"),
    _cmd("ip -4 route get 8.8.8.8", "/usr/sbin/ip"),
    _cmd("man ss"),
    _cmd("grep ss /etc/services"),
    _cmd("ssh db-01"),
    _cmd("sss_cache -E", "/usr/sbin/sss_cache"),
]
SSHD = _cmd("/usr/sbin/sshd -D -R", "/usr/sbin/sshd")
BY_ROLE: dict[str, list[Command]] = {
    "web": [
        _cmd("nginx -s reload", "/usr/sbin/nginx"),
        _cmd("php-fpm8.1 -t", "/usr/sbin/php-fpm8.1"),
    ],
    "db": [_cmd("psql -c select 1"), _cmd("pg_dump -Fc appdb"), _cmd("vacuumdb --all")],
    "bastion": [_cmd("ssh web-01"), _cmd("ssh db-01"), _cmd("scp backup.tar.gz build-01:")],
    "build": [
        _cmd("git fetch --all"),
        _cmd("make -j4"),
        _cmd("gcc -O2 -c main.c"),
        _cmd("java -jar agent.jar"),
    ],
    "app": [_cmd("java -Xmx2g -jar app.jar"), _cmd("systemctl restart app")],
    "cache": [_cmd("redis-cli info"), _cmd("systemctl status redis")],
}
ROOT_CRON = [
    _cmd("run-parts --report /etc/cron.hourly", "/usr/bin/run-parts"),
    _cmd("logrotate /etc/logrotate.conf", "/usr/sbin/logrotate"),
    _cmd("apt-get update -q"),
    _cmd("find /tmp -type f -atime +10 -delete"),
]
SERVICE_CMDS: dict[str, list[Command]] = {
    "www-data": [
        _cmd("php-fpm8.1", "/usr/sbin/php-fpm8.1"),
        _cmd("sh -c convert upload.png thumb.png", "/usr/bin/sh"),
    ],
    "postgres": [
        _cmd("postgres -D /var/lib/postgresql/14/main", "/usr/lib/postgresql/14/bin/postgres")
    ],
    "jenkins": [_cmd("git clone https://git.example.internal/app.git"), _cmd("mvn -q package")],
    "deploy": [_cmd("rsync -a release/ /srv/app/"), _cmd("systemctl restart app")],
}
_SERVICE_ROLE = {"www-data": "web", "postgres": "db", "jenkins": "build", "deploy": "app"}


def _hex(rng: random.Random, nbytes: int) -> str:
    return f"{rng.getrandbits(nbytes * 8):0{nbytes * 2}x}"


def make_hosts(count: int, rng: random.Random) -> list[Host]:
    hosts: list[Host] = []
    seen: dict[str, int] = {}
    for i in range(count):
        role = _ROLES[i % len(_ROLES)] if i < len(_ROLES) else "app"
        seen[role] = seen.get(role, 0) + 1
        family, platform, os_name, version, kernel = _OS[i % len(_OS)]
        hosts.append(
            Host(
                name=f"{role}-{seen[role]:02d}",
                role=role,
                id=_hex(rng, 16),
                ip=f"10.0.{1 + i // 250}.{10 + i % 250}",
                mac="-".join(f"{rng.randrange(256):02X}" for _ in range(6)),
                os_family=family,
                os_platform=platform,
                os_name=os_name,
                os_version=version,
                kernel=kernel,
                agent="auditbeat" if role in ("db", "build") else "endpoint",
                agent_id=f"{_hex(rng, 4)}-{_hex(rng, 2)}-{_hex(rng, 2)}-{_hex(rng, 2)}-{_hex(rng, 6)}",
            )
        )
    return hosts


def make_users(humans: int) -> list[User]:
    users = [
        User("root", 0, "root", "/root"),
        User("monitor", 995, "service", "/var/lib/monitor", "sh"),
        User("nagios", 996, "service", "/var/lib/nagios", "nrpe"),
        User("www-data", 33, "service", "/var/www", "php-fpm8.1"),
        User("postgres", 113, "service", "/var/lib/postgresql", "postgres"),
        User("jenkins", 998, "service", "/var/lib/jenkins", "java"),
        User("deploy", 997, "service", "/home/deploy", "sshd"),
    ]
    for i in range(humans):
        name = _HUMANS[i] if i < len(_HUMANS) else f"user{i + 1:02d}"
        kind = "admin" if name in _ADMINS else "human"
        users.append(User(name, 1001 + i, kind, f"/home/{name}"))
    return users


# --- one event, as a document --------------------------------------------------------------------


@dataclass(slots=True)
class _Pids:
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


class _Renderer:
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
                "entity_id": _hex(self.rng, 12),
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
            event["id"] = _hex(self.rng, 10)
            event["sequence"] = self.seq
            process = doc["process"]
            process["interactive"] = user.kind in ("human", "admin")
            process["parent"].update(
                {
                    "args": [parent],
                    "args_count": 1,
                    "entity_id": _hex(self.rng, 12),
                }
            )
            process["entry_leader"] = {
                "entity_id": _hex(self.rng, 12),
                "executable": "/usr/sbin/sshd",
                "name": "sshd",
                "pid": 812,
            }
        return doc


# --- the fleet profile ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Run:
    """One process start to render: everything but the document."""

    ms: int
    order: int
    host: int
    user: User
    cmd: Command
    parent: str
    end: bool = False


def attack_window(options: GeneratorOptions) -> tuple[datetime, datetime]:
    """When the constructed compromised-account burst happens (fleet profile)."""
    day = min(options.days - 1, max(0, round(options.days * 0.8)))
    start = options.start + timedelta(days=day, hours=2, minutes=41, seconds=7)
    return start, start + timedelta(minutes=3)


def _working_ms(rng: random.Random, day_ms: int) -> int:
    """A moment in working hours (08:00-19:00 UTC, busiest mid-morning and mid-afternoon)."""
    hour = rng.choice([8, 9, 9, 10, 10, 10, 11, 11, 13, 14, 14, 15, 15, 16, 17, 18])
    return day_ms + hour * _HOUR + rng.randrange(_HOUR)


def _fleet_runs(
    options: GeneratorOptions, hosts: list[Host], users: list[User], rng: random.Random
) -> list[_Run]:
    by_name = {u.name: u for u in users}
    start_ms = to_epoch_ms(options.start)
    runs: list[_Run] = []
    order = 0

    def add(ms: int, host: int, user: User, cmd: Command, parent: str) -> None:
        nonlocal order
        order += 1
        runs.append(_Run(ms, order, host, user, cmd, parent))

    web_db = [i for i, h in enumerate(hosts) if h.role in ("web", "db")] or [0]
    humans = [u for u in users if u.kind in ("human", "admin")]
    admins = [u for u in humans if u.kind == "admin"]
    services = [by_name[n] for n in ("www-data", "postgres", "jenkins", "deploy")]
    discovery = 0
    for day in range(options.days):
        day_ms = start_ms + day * _DAY
        weekday = (options.start + timedelta(days=day)).weekday() < 5
        # monitoring: ss every 5 minutes on every host, netstat every 10 on web and db hosts
        for h in range(len(hosts)):
            offset = rng.randrange(5 * _MINUTE)
            for slot in range(288):
                add(
                    day_ms + slot * 5 * _MINUTE + offset + rng.randrange(900),
                    h,
                    by_name["monitor"],
                    MONITOR[slot % 2],
                    "sh",
                )
                discovery += 1
        for h in web_db:
            offset = rng.randrange(10 * _MINUTE)
            for slot in range(144):
                add(
                    day_ms + slot * 10 * _MINUTE + offset + rng.randrange(2000),
                    h,
                    by_name["nagios"],
                    NAGIOS,
                    "nrpe",
                )
                discovery += 1
        # admins troubleshoot now and then
        for admin in admins:
            if rng.random() < (0.35 if weekday else 0.08):
                h = rng.randrange(len(hosts))
                ms = _working_ms(rng, day_ms)
                for _ in range(rng.randint(1, 3)):
                    ms += rng.randrange(5_000, 90_000)
                    cmd = rng.choice(TROUBLESHOOT)
                    add(ms, h, admin, cmd, "bash")
                    discovery += cmd.name in DISCOVERY_NAMES
    # ordinary activity around it
    ordinary = round(discovery * (1 - options.fraction) / options.fraction)
    per_day = max(1, ordinary // options.days)
    for day in range(options.days):
        day_ms = start_ms + day * _DAY
        weekday = (options.start + timedelta(days=day)).weekday() < 5
        for _ in range(per_day):
            roll = rng.random()
            if roll < 0.25:  # root cron and maintenance, around the clock
                h = rng.randrange(len(hosts))
                add(day_ms + rng.randrange(_DAY), h, by_name["root"], rng.choice(ROOT_CRON), "cron")
            elif roll < 0.45:  # service accounts on their own hosts
                user = rng.choice(services)
                mine = [
                    i for i, host in enumerate(hosts) if host.role == _SERVICE_ROLE[user.name]
                ] or [0]
                add(
                    day_ms + rng.randrange(_DAY),
                    rng.choice(mine),
                    user,
                    rng.choice(SERVICE_CMDS[user.name]),
                    user.shell_parent,
                )
            elif roll < 0.55:  # logins: sshd, then sss_cache
                h = rng.randrange(len(hosts))
                ms = _working_ms(rng, day_ms) if weekday else day_ms + rng.randrange(_DAY)
                add(ms, h, by_name["root"], SSHD, "sshd")
                add(ms + rng.randrange(50, 400), h, by_name["root"], DECOYS[5], "sshd")
            elif humans:  # people at work
                user = rng.choice(humans)
                h = rng.randrange(len(hosts))
                ms = (
                    _working_ms(rng, day_ms)
                    if weekday or rng.random() < 0.1
                    else day_ms + rng.randrange(_DAY)
                )
                pick = rng.random()
                if pick < 0.08:
                    cmd = rng.choice(DECOYS[:5])
                elif pick < 0.35:
                    cmd = rng.choice(BY_ROLE[hosts[h].role])
                else:
                    cmd = rng.choice(COMMON)
                add(ms, h, user, cmd, "bash")
    # the constructed attack: www-data on the first web host, late in the period
    first, _ = attack_window(options)
    ms = to_epoch_ms(first)
    web = next((i for i, host in enumerate(hosts) if host.role == "web"), 0)
    for cmd in ATTACK:
        add(ms, web, by_name["www-data"], cmd, "sh")
        ms += rng.randrange(2_000, 25_000)
    runs.sort(key=lambda r: (r.ms, r.order))
    return runs


def _fleet_documents(options: GeneratorOptions) -> Iterator[dict[str, Any]]:
    rng = random.Random(options.seed)
    hosts = make_hosts(options.hosts, rng)
    users = make_users(options.users)
    runs = _fleet_runs(options, hosts, users, rng)
    render = _Renderer(hosts, rng, rich=False)
    pids = _Pids(rng)
    pending_ends: list[tuple[int, int, dict[str, Any]]] = []
    for i, run in enumerate(runs):
        host = hosts[run.host]
        while pending_ends and pending_ends[0][0] <= run.ms:
            yield heapq.heappop(pending_ends)[2]
        pid = pids.take(host.name)
        ppid = max(2, pid - 1 - rng.randrange(30))
        yield render.render(run.ms, host, run.user, run.cmd, pid, ppid, run.parent)
        if host.agent == "endpoint" and rng.random() < 0.1:
            end_ms = run.ms + rng.randrange(20, 5_000)
            doc = render.render(end_ms, host, run.user, run.cmd, pid, ppid, run.parent, end=True)
            heapq.heappush(pending_ends, (end_ms, i, doc))
    while pending_ends:
        yield heapq.heappop(pending_ends)[2]


# --- the bench profile ---------------------------------------------------------------------------


def _bench_documents(options: GeneratorOptions) -> Iterator[dict[str, Any]]:
    rng = random.Random(options.seed)
    hosts = make_hosts(max(options.hosts, 20), rng)
    hosts = [h for h in hosts if h.agent == "endpoint"] or hosts
    users = make_users(max(options.users, 10))
    by_name = {u.name: u for u in users}
    render = _Renderer(hosts, rng, rich=True)
    pids = _Pids(rng)
    humans = [u for u in users if u.kind in ("human", "admin")]
    discoverers = [by_name["monitor"], by_name["nagios"], *[u for u in users if u.kind == "admin"]]
    discovery_cmds = [*MONITOR, NAGIOS, *TROUBLESHOOT]
    ordinary = [*COMMON, SSHD, DECOYS[4], DECOYS[5], *ROOT_CRON]
    literal_decoys = DECOYS[:4]  # hold "ss" or "route" as a JSON string: 1 % of the events
    span = options.days * _DAY
    step = max(1, span // max(1, options.events))
    ms = to_epoch_ms(options.start)
    fraction = options.fraction
    random_ = rng.random
    for _ in range(options.events):
        ms += rng.randrange(step * 2 + 1)
        host = hosts[rng.randrange(len(hosts))]
        if random_() < fraction:
            user = discoverers[rng.randrange(len(discoverers))]
            cmd = discovery_cmds[rng.randrange(len(discovery_cmds))]
        else:
            user = humans[rng.randrange(len(humans))] if random_() < 0.6 else by_name["root"]
            if random_() < 0.01:
                cmd = literal_decoys[rng.randrange(len(literal_decoys))]
            else:
                cmd = ordinary[rng.randrange(len(ordinary))]
        pid = pids.take(host.name)
        yield render.render(ms, host, user, cmd, pid, pid - 1, "bash", end=random_() < 0.1)


# --- public API ----------------------------------------------------------------------------------


def generate_documents(options: GeneratorOptions | None = None) -> Iterator[dict[str, Any]]:
    """The scenario's ECS documents, in time order."""
    options = options or GeneratorOptions()
    if options.profile == "bench":
        return _bench_documents(options)
    return _fleet_documents(options)


def generate_events(options: GeneratorOptions | None = None) -> Iterator[ProcessEvent]:
    """The scenario as typed events (what the ECS source would read back from the file)."""
    for doc in generate_documents(options):
        yield event_from_document(doc)


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


def parse_start(text: str) -> datetime:
    """A start date for ``--start``: ``2026-01-05`` or a full ISO timestamp (UTC if naive)."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"not a date (expected e.g. 2026-01-05): {text!r}") from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
