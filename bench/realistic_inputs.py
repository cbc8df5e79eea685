"""`rarebird job run` on realistic inputs, against grep and ausearch on the same files (issue 10).

The inputs come from :mod:`_realistic` (not rarebird's own generator): raw auditd as auditd
writes it with ENRICHED and ``node=`` (no ``EOE``, about 2 % of events with a record written
after the next event's; a variant with ``EOE``), and Elastic Defend ECS documents (end and fork
events, keys in varied orders). Each is written at the default shares (2 % of execs are
discovery commands, 10 % near-miss decoys), with many decoys (40 %: the unfavourable case,
lines that hold the literals and must be looked at), and with 10 % matching (how the cost grows
with the share of matching lines); ``ecs-gz`` is the ECS file gzip-compressed (a rotated log:
ISA-L's igzip against zlib, ``RAREBIRD_GZIP=zlib``, the baseline ``gzip -dc | grep``).

Every command is a whole process, timed on the warm page cache; the commands of one input run
interleaved (grep, rarebird, ausearch, grep, rarebird, ...) ``--repeat`` times (3) and the
median is reported, so that each figure sits beside its baseline measured in the same minute.
Peak RSS from ``/usr/bin/time -v``. ``--before REV`` also times ``job run`` of the tree at git
revision REV (exported under ``bench/out/``) in the same rotation.

    python bench/realistic_inputs.py                        # 200,000 events per input
                                                            # (all 8 inputs: about 8 minutes
                                                            # on the 2-core machine, --only
                                                            # to pick some)
    python bench/realistic_inputs.py --events 1000000       # the issue's size
    python bench/realistic_inputs.py --before main --only auditd-no-eoe
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _realistic import Written, write_auditd, write_ecs, write_laurel, write_sysmon

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GNU_TIME = "/usr/bin/time"
ECS_GREP = '"(netstat|ss|route|showmount)"'
AUDIT_GREP = r'exe="[^"]*/(netstat|ss|route|showmount)"'
#: a JSON string value that is one of the names or a path ending in one (Laurel's "exe")
LAUREL_GREP = '[/"](netstat|ss|route|showmount)"'
#: an XML text that is one of the names or a path ending in one (Sysmon's Image)
SYSMON_GREP = "[/>](netstat|ss|route|showmount)<"
GREPS = {"auditd": AUDIT_GREP, "ecs": ECS_GREP, "laurel": LAUREL_GREP, "sysmon": SYSMON_GREP}
EXTENSIONS = {"auditd": "log", "ecs": "ndjson", "laurel": "jsonl", "sysmon": "syslog"}
#: each writer takes (path, events, **the input's keyword arguments)
WRITERS: dict[str, Callable[..., Written]] = {
    "auditd": write_auditd,
    "ecs": write_ecs,
    "laurel": write_laurel,
    "sysmon": write_sysmon,
}

#: name -> (format, generator keyword arguments)
INPUTS: dict[str, tuple[str, dict[str, object]]] = {
    "auditd-no-eoe": ("auditd", {}),
    "auditd-eoe": ("auditd", {"eoe": True}),
    "auditd-decoys-40": ("auditd", {"decoy_share": 0.40}),
    "auditd-match-10": ("auditd", {"match_share": 0.10}),
    "ecs": ("ecs", {}),
    "ecs-decoys-40": ("ecs", {"decoy_share": 0.40}),
    "ecs-match-10": ("ecs", {"match_share": 0.10}),
    # Laurel's JSON lines (one line per audit event): the line reader of laurel / osquery / OCSF
    "laurel": ("laurel", {}),
    "laurel-decoys-40": ("laurel", {"decoy_share": 0.40}),
    # Sysmon for Linux in syslog, amid other programs' lines
    "sysmon": ("sysmon", {}),
    "sysmon-decoys-40": ("sysmon", {"decoy_share": 0.40}),
    # the unfavourable shape for Sysmon's reader: nine in ten lines are other programs', whose
    # ends are not </Event>, so each is searched for <Event in Python
    "sysmon-others-90": ("sysmon", {"others": 0.9}),
    # the "ecs" input gzip-compressed (a rotated log): igzip against zlib
    "ecs-gz": ("ecs", {}),
}


@dataclass(frozen=True)
class Run:
    seconds: float
    rss_mb: float | None
    output: str


def generate(name: str, events: int) -> tuple[Path, Written]:
    if name.endswith("-gz"):
        plain, written = generate(name[: -len("-gz")], events)
        path = plain.with_name(plain.name + ".gz")
        if not path.exists():
            print(f"compressing {plain.name} (gzip -6) ...", flush=True)
            with open(path.with_suffix(".tmp"), "wb") as out:
                subprocess.run(["gzip", "-6", "-c", str(plain)], stdout=out, check=True)
            path.with_suffix(".tmp").rename(path)
        return path, Written(**{**asdict(written), "path": str(path)})
    fmt, kwargs = INPUTS[name]
    digest = hashlib.sha256((ROOT / "bench" / "_realistic.py").read_bytes()).hexdigest()[:10]
    ext = EXTENSIONS[fmt]  # ("-gz" inputs: the same, compressed)
    path = OUT / f"realistic-{name}-{events}-{digest}.{ext}"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        return path, Written(**json.loads(meta.read_text()))
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"realistic-{name}-{events}-*"):
        old.unlink()
    print(f"generating {name} ({events:,} events) ...", flush=True)
    tmp = path.with_suffix(".tmp")
    written = WRITERS[fmt](tmp, events, **kwargs)
    tmp.rename(path)
    written = Written(**{**asdict(written), "path": str(path)})
    meta.write_text(json.dumps(asdict(written)))
    return path, written


def run(cmd: list[str], env: dict[str, str] | None = None) -> Run:
    timed = [GNU_TIME, "-v", *cmd] if os.path.exists(GNU_TIME) else cmd
    # ausearch's CSV goes to /dev/null (as grep's count and rarebird's summary, it is not kept)
    out = subprocess.DEVNULL if cmd[0] == "ausearch" else subprocess.PIPE
    started = time.perf_counter()
    proc = subprocess.run(
        timed, stdout=out, stderr=subprocess.PIPE, text=True, env=env, check=False
    )
    seconds = time.perf_counter() - started
    if proc.returncode not in (0, 1):  # grep -c exits 1 on no match
        raise RuntimeError(f"{' '.join(cmd)} failed: {proc.stderr[-2000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return Run(seconds, int(m.group(1)) / 1024 if m else None, (proc.stdout or "") + proc.stderr)


def export_tree(rev: str) -> Path:
    """The ``src`` of git revision ``rev``, exported once under bench/out."""
    sha = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", rev],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    dest = OUT / f"tree-{sha}"
    if not (dest / "src" / "rarebird").exists():
        dest.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", sha, "src"], capture_output=True, check=True
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest / "src"


def commands(
    name: str, path: Path, store: Path, before: Path | None, workers: int
) -> dict[str, tuple[list[str], dict[str, str] | None]]:
    fmt = INPUTS[name][0]
    py = sys.executable
    # the targets are for one core: --workers 1 (the default is auto since 2026-12-05)
    job = [py, "-m", "rarebird", "job", "run", "--workers", "1", "--store", str(store), str(path)]
    default = [py, "-m", "rarebird", "job", "run", "--store", str(store), str(path)]
    grep = ["grep", "-c", "-E", GREPS[fmt], str(path)]
    if name.endswith("-gz"):
        grep = ["sh", "-c", f"gzip -dc '{path}' | grep -c -E '{ECS_GREP}'"]
    cmds: dict[str, tuple[list[str], dict[str, str] | None]] = {
        "grep -c -E (baseline)": (grep, None),
        "rarebird job run --workers 1": (job, None),
    }
    if name.endswith("-gz"):
        cmds["rarebird job run, zlib (RAREBIRD_GZIP=zlib)"] = (
            job,
            {**os.environ, "RAREBIRD_GZIP": "zlib"},
        )
    if not name.endswith("-gz"):
        cmds["rarebird job run (default: --workers auto)"] = (default, None)
    if workers > 1 and workers != min(8, len(os.sched_getaffinity(0))) and not name.endswith("-gz"):
        cmds[f"rarebird job run --workers {workers}"] = (
            [*default[:4], "--workers", str(workers), *default[4:]],
            None,
        )
    if before is not None:
        env = {**os.environ, "PYTHONPATH": str(before)}
        cmds["rarebird job run, before"] = (job, env)
    if fmt == "auditd" and shutil.which("ausearch"):
        cmds["ausearch --format csv -if"] = (
            ["ausearch", "--format", "csv", "-if", str(path)],
            None,
        )
    if fmt == "auditd" and "RAREBIRD_AUDITD_SEARCH" not in os.environ:
        # the exe= search without Hyperscan (where its wheel is missing or loses on this CPU)
        plain = {**os.environ, "RAREBIRD_AUDITD_SEARCH": "re"}
        cmds["rarebird job run --workers 1, re search"] = (job, plain)
    if fmt == "ecs" and not name.endswith("-gz") and "RAREBIRD_ECS_SEARCH" not in os.environ:
        forced = {**os.environ, "RAREBIRD_ECS_SEARCH": "hyperscan"}
        cmds["rarebird job run, hyperscan forced"] = (job, forced)
    return cmds


def kept(output: str) -> int | None:
    m = re.search(r"kept\s+([\d,]+) events", output)
    return int(m.group(1).replace(",", "")) if m else None


def read_as(outputs: list[str]) -> str:
    """How the runs read the input, from their ``input`` lines (``auto`` chooses its search in
    each run: a choice that changed between runs shows as two entries)."""
    seen: Counter[str] = Counter()
    for output in outputs:
        m = re.search(r"^input\s+.*?; (.+)$", output, re.MULTILINE)
        if m:
            seen[m.group(1)] += 1
    if len(seen) == 1:
        return next(iter(seen))
    return "; ".join(f"{how} (x{n})" for how, n in seen.most_common())


def measure(
    name: str, events: int, repeat: int, before: Path | None, workers: int
) -> dict[str, object]:
    path, written = generate(name, events)
    with tempfile.TemporaryDirectory(prefix="rarebird-bench-") as tmp:
        store = Path(tmp) / "bench.db"
        cmds = commands(name, path, store, before, workers)
        runs: dict[str, list[Run]] = {label: [] for label in cmds}
        for _ in range(repeat):
            for label, (cmd, env) in cmds.items():
                if store.exists():
                    store.unlink()
                runs[label].append(run(cmd, env))
    rows = {}
    for label, results in runs.items():
        rss = [r.rss_mb for r in results if r.rss_mb is not None]
        rows[label] = {
            "median_s": statistics.median(r.seconds for r in results),
            "runs_s": [round(r.seconds, 3) for r in results],
            "peak_rss_mb": max(rss) if rss else None,
            "kept": kept(results[-1].output) if label.startswith("rarebird") else None,
            "read_as": read_as([r.output for r in results]),
        }
    return {"input": name, "written": asdict(written), "rows": rows}


def report(result: dict[str, object]) -> None:
    written = result["written"]
    rows = result["rows"]
    assert isinstance(written, dict)
    assert isinstance(rows, dict)
    base = rows["grep -c -E (baseline)"]["median_s"]
    aus = rows.get("ausearch --format csv -if", {}).get("median_s")
    print(
        f"\n{result['input']}: {written['events']:,} events, {written['lines']:,} lines, "
        f"{written['bytes'] / 1e6:,.0f} MB, {written['matching']:,} matching, "
        f"{written['decoys']:,} decoys"
    )
    print("| command | median s | runs | vs grep | ausearch / it | peak RSS MB | kept | read as |")
    print("|---|---:|---|---:|---:|---:|---:|---|")
    for label, row in rows.items():
        vs_aus = f"{aus / row['median_s']:.1f}x" if aus else ""
        rss = f"{row['peak_rss_mb']:.0f}" if row["peak_rss_mb"] else ""
        print(
            f"| {label} | {row['median_s']:.2f} | {', '.join(f'{x:.2f}' for x in row['runs_s'])} "
            f"| {row['median_s'] / base:.2f}x | {vs_aus} | {rss} | {row['kept'] or ''} "
            f"| {row.get('read_as', '')} |"
        )
        if row["kept"] is not None and row["kept"] != written["matching"]:
            print(f"  !! kept {row['kept']} but the generator wrote {written['matching']} matching")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    quick = os.environ.get("RAREBIRD_BENCH_QUICK") == "1"
    ap.add_argument("--events", type=int, default=50_000 if quick else 200_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", nargs="*", choices=sorted(INPUTS), help="inputs to measure")
    ap.add_argument("--before", help="also time job run of the tree at this git revision")
    ap.add_argument(
        "--workers",
        type=int,
        default=2,
        help="also time job run --workers N (when N is not what auto picks)",
    )
    args = ap.parse_args()
    before = export_tree(args.before) if args.before else None
    load = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, load average {load[0]:.2f} at the start (the machine may be "
        f"shared: compare each figure with its baseline from the same run only)"
    )
    results = []
    for name in args.only or list(INPUTS):
        result = measure(name, args.events, args.repeat, before, args.workers)
        report(result)
        results.append(result)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"realistic-results-{args.events}.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
