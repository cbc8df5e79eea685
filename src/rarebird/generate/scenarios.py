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

import heapq
import random
from collections.abc import Iterator
from typing import Any

from rarebird.events import ProcessEvent
from rarebird.generate.ecs import Pids, Renderer
from rarebird.generate.fleet import (
    COMMON,
    DAY_MS,
    DECOYS,
    MONITOR,
    NAGIOS,
    ROOT_CRON,
    SSHD,
    TROUBLESHOOT,
    fleet_runs,
    make_hosts,
    make_users,
)
from rarebird.generate.options import GeneratorOptions
from rarebird.sources.ecs import event_from_document
from rarebird.timeutil import to_epoch_ms


def _fleet_documents(options: GeneratorOptions) -> Iterator[dict[str, Any]]:
    rng = random.Random(options.seed)
    hosts = make_hosts(options.hosts, rng)
    users = make_users(options.users)
    runs = fleet_runs(options, hosts, users, rng)
    render = Renderer(hosts, rng, rich=False)
    pids = Pids(rng)
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


def _bench_documents(options: GeneratorOptions) -> Iterator[dict[str, Any]]:
    rng = random.Random(options.seed)
    hosts = make_hosts(max(options.hosts, 20), rng)
    hosts = [h for h in hosts if h.agent == "endpoint"] or hosts
    users = make_users(max(options.users, 10))
    by_name = {u.name: u for u in users}
    render = Renderer(hosts, rng, rich=True)
    pids = Pids(rng)
    humans = [u for u in users if u.kind in ("human", "admin")]
    discoverers = [by_name["monitor"], by_name["nagios"], *[u for u in users if u.kind == "admin"]]
    discovery_cmds = [*MONITOR, NAGIOS, *TROUBLESHOOT]
    ordinary = [*COMMON, SSHD, DECOYS[4], DECOYS[5], *ROOT_CRON]
    literal_decoys = DECOYS[:4]  # hold "ss" or "route" as a JSON string: 1 % of the events
    span = options.days * DAY_MS
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
