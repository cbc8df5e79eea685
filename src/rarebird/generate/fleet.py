"""The simulated fleet: hosts, users, the commands they run, and when (the ``fleet`` profile's
runs, with the constructed attack; see :mod:`rarebird.generate.scenarios`)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta

from rarebird.generate.options import GeneratorOptions
from rarebird.timeutil import to_epoch_ms

DISCOVERY_NAMES = frozenset({"netstat", "ss", "route", "showmount"})
MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS


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


def random_hex(rng: random.Random, nbytes: int) -> str:
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
                id=random_hex(rng, 16),
                ip=f"10.0.{1 + i // 250}.{10 + i % 250}",
                mac="-".join(f"{rng.randrange(256):02X}" for _ in range(6)),
                os_family=family,
                os_platform=platform,
                os_name=os_name,
                os_version=version,
                kernel=kernel,
                agent="auditbeat" if role in ("db", "build") else "endpoint",
                agent_id=f"{random_hex(rng, 4)}-{random_hex(rng, 2)}-{random_hex(rng, 2)}-{random_hex(rng, 2)}-{random_hex(rng, 6)}",
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


@dataclass(frozen=True, slots=True)
class Run:
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
    return day_ms + hour * HOUR_MS + rng.randrange(HOUR_MS)


def fleet_runs(
    options: GeneratorOptions, hosts: list[Host], users: list[User], rng: random.Random
) -> list[Run]:
    by_name = {u.name: u for u in users}
    start_ms = to_epoch_ms(options.start)
    runs: list[Run] = []
    order = 0

    def add(ms: int, host: int, user: User, cmd: Command, parent: str) -> None:
        nonlocal order
        order += 1
        runs.append(Run(ms, order, host, user, cmd, parent))

    web_db = [i for i, h in enumerate(hosts) if h.role in ("web", "db")] or [0]
    humans = [u for u in users if u.kind in ("human", "admin")]
    admins = [u for u in humans if u.kind == "admin"]
    services = [by_name[n] for n in ("www-data", "postgres", "jenkins", "deploy")]
    discovery = 0
    for day in range(options.days):
        day_ms = start_ms + day * DAY_MS
        weekday = (options.start + timedelta(days=day)).weekday() < 5
        # monitoring: ss every 5 minutes on every host, netstat every 10 on web and db hosts
        for h in range(len(hosts)):
            offset = rng.randrange(5 * MINUTE_MS)
            for slot in range(288):
                add(
                    day_ms + slot * 5 * MINUTE_MS + offset + rng.randrange(900),
                    h,
                    by_name["monitor"],
                    MONITOR[slot % 2],
                    "sh",
                )
                discovery += 1
        for h in web_db:
            offset = rng.randrange(10 * MINUTE_MS)
            for slot in range(144):
                add(
                    day_ms + slot * 10 * MINUTE_MS + offset + rng.randrange(2000),
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
        day_ms = start_ms + day * DAY_MS
        weekday = (options.start + timedelta(days=day)).weekday() < 5
        for _ in range(per_day):
            roll = rng.random()
            if roll < 0.25:  # root cron and maintenance, around the clock
                h = rng.randrange(len(hosts))
                add(
                    day_ms + rng.randrange(DAY_MS),
                    h,
                    by_name["root"],
                    rng.choice(ROOT_CRON),
                    "cron",
                )
            elif roll < 0.45:  # service accounts on their own hosts
                user = rng.choice(services)
                mine = [
                    i for i, host in enumerate(hosts) if host.role == _SERVICE_ROLE[user.name]
                ] or [0]
                add(
                    day_ms + rng.randrange(DAY_MS),
                    rng.choice(mine),
                    user,
                    rng.choice(SERVICE_CMDS[user.name]),
                    user.shell_parent,
                )
            elif roll < 0.55:  # logins: sshd, then sss_cache
                h = rng.randrange(len(hosts))
                ms = _working_ms(rng, day_ms) if weekday else day_ms + rng.randrange(DAY_MS)
                add(ms, h, by_name["root"], SSHD, "sshd")
                add(ms + rng.randrange(50, 400), h, by_name["root"], DECOYS[5], "sshd")
            elif humans:  # people at work
                user = rng.choice(humans)
                h = rng.randrange(len(hosts))
                ms = (
                    _working_ms(rng, day_ms)
                    if weekday or rng.random() < 0.1
                    else day_ms + rng.randrange(DAY_MS)
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
