"""``--workers auto`` (the default of every command that reads inputs): the usable CPUs shared
among the files read at once, and what a user who types a wrong value reads."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rarebird.definitions import load_datafeed, load_job
from rarebird.run.replay import AUTO_WORKERS, InputOptions
from rarebird.sources.ranges import MAX_AUTO_WORKERS, auto_workers, cpu_quota, usable_cpus


def rarebird(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rarebird", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def workers_given(options: InputOptions, inputs: int) -> int:
    opts = options.source_options(load_job(), load_datafeed(), inputs=inputs)
    return int(opts.extra.get("workers", "1"))


def test_auto_shares_the_cpus_among_the_inputs() -> None:
    cpus = usable_cpus()
    quota = cpu_quota()
    mask = len(os.sched_getaffinity(0))
    assert cpus == (mask if quota is None else max(1, min(mask, math.ceil(quota))))
    auto = InputOptions(workers=AUTO_WORKERS)
    assert workers_given(auto, 1) == min(cpus, MAX_AUTO_WORKERS)
    assert workers_given(auto, cpus) == 1  # one file per CPU: one process each
    assert workers_given(auto, 2 * cpus) == 1
    # a number is taken as given, whatever the inputs
    assert workers_given(InputOptions(workers=3), 5) == 3
    assert workers_given(InputOptions(), 1) == 1  # the library's default stays one process
    assert [auto_workers(n, cpus=16) for n in (1, 2, 3, 16, 40)] == [8, 8, 5, 1, 1]


@pytest.mark.parametrize("given", ["0", "-2", "two", "2.5", ""])
def test_a_wrong_workers_value_is_refused_in_words(given: str) -> None:
    proc = rarebird("job", "run", "--workers", given, "nothing.ndjson")
    assert proc.returncode == 2
    assert f"Invalid value for '--workers': {given!r} is not auto or a number" in proc.stderr


def test_help_shows_auto_as_the_default() -> None:
    for command in (("job", "run"), ("detect",), ("evaluate",), ("export", "parquet")):
        out = rarebird(*command, "--help").stdout
        assert "--workers auto|N" in out, command
        assert "[default: auto]" in " ".join(out.split()), command


@pytest.mark.parametrize(
    ("files", "quota", "cpus"),
    [
        ({"cpu.max": "150000 100000\n"}, 1.5, 2),  # cgroup v2, docker --cpus 1.5
        ({"cpu.max": "50000 100000\n"}, 0.5, 1),
        ({"cpu.max": "max 100000\n"}, None, None),  # no limit: the affinity mask decides
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 1.0, 1),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None, None),
        ({"cpu.max": "garbage\n"}, None, None),
        ({}, None, None),  # no cgroup files at all (not Linux, or not mounted)
    ],
)
def test_auto_keeps_to_the_containers_cpu_quota(
    tmp_path: Path, files: dict[str, str], quota: float | None, cpus: int | None
) -> None:
    """A container limited to 1.5 CPUs sees all of the host's CPUs in its affinity mask:
    ``auto`` must not start a worker per host CPU there."""
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cpu_quota(str(tmp_path)) == quota
    mask = len(os.sched_getaffinity(0))
    assert usable_cpus(str(tmp_path)) == (mask if cpus is None else min(mask, cpus))
