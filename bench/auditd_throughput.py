"""Throughput of the raw auditd input against Debian's audit tools, in the same run.

Generates (once, cached under ``bench/out/``) a raw audit log of 1,000,000 exec events from the
bench scenario of :mod:`rarebird.generate.scenarios` (about 1.2 GB, 7 records per exec: SYSCALL,
EXECVE, CWD, two PATH, PROCTITLE, EOE; ENRICHED format; about 2 % netstat/ss/route/showmount,
with sshd/ssh/sss_cache and ``ip route`` decoys). Then times, on the warm page cache, best of
``--repeat`` runs each (every command in a child process, start-up included):

1. ``ausearch --input FILE --format csv`` and ``ausearch --input FILE --raw`` (when installed);
2. ``grep -c`` for ``exe="…/(netstat|ss|route|showmount)"`` (the text-scan limit);
3. the auditd source with the datafeed's prefilter, on one core, then with 2 worker processes;
4. the same plus the datafeed query, as the job sees it;
5. ``rarebird job run --input-format auditd`` end to end (when the CLI has it);
6. with ``--full``: the full parse (every record decoded), for scale.

Peak RSS from ``/usr/bin/time -v`` (else ``getrusage``). Targets: one core at >= 250,000 exec
events/s, >= 3x faster than ``ausearch --format csv``, peak RSS under 200 MB.

    python bench/auditd_throughput.py                   # 1M exec events
    python bench/auditd_throughput.py --events 100000   # quick (RAREBIRD_BENCH_QUICK=1 too)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
GNU_TIME = "/usr/bin/time"
TARGET_RATE = 250_000
TARGET_VS_CSV = 3.0
TARGET_RSS_MB = 200.0
GREP = r'exe="[^"]*/(netstat|ss|route|showmount)"'


@dataclass(frozen=True)
class Timing:
    name: str
    seconds: float
    rss_mb: float | None
    note: str = ""


def bench_file(events: int, seed: int) -> Path:
    """The cached audit log, regenerated when the generators' source changed."""
    import rarebird.generate
    from rarebird.generate.auditd import generate_audit_log
    from rarebird.generate.options import GeneratorOptions

    sources = sorted(Path(rarebird.generate.__file__).parent.glob("*.py"))
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in sources)).hexdigest()[:12]
    path = OUT / f"auditd-bench-{events}-seed{seed}-{digest}.log"
    if path.exists():
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob(f"auditd-bench-{events}-seed{seed}-*.log"):
        old.unlink()
    print(f"generating {events:,} exec events into {path.relative_to(ROOT)} ...", flush=True)
    started = time.perf_counter()
    tmp = path.with_suffix(".tmp")
    # the bench profile has 10 % process ends, which have no audit record: ask for enough
    scenario = GeneratorOptions(profile="bench", events=events * 9 // 8 + 1000, seed=seed)
    written = generate_audit_log(str(tmp), exec_events=events, scenario=scenario)
    tmp.rename(path)
    print(
        f"  {written.events:,} execs, {written.records:,} records in "
        f"{time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return path


def run_timed(
    cmd: list[str], repeat: int, *, keep_stdout: bool = True
) -> tuple[float, float | None, str]:
    """Best wall time of ``repeat`` runs, the peak RSS (MB) of that run, and its stdout."""
    best, best_rss, out = float("inf"), None, ""
    for _ in range(repeat):
        use_gnu = os.access(GNU_TIME, os.X_OK)
        full = [GNU_TIME, "-v", *cmd] if use_gnu else cmd
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        started = time.perf_counter()
        proc = subprocess.run(
            full,
            stdout=subprocess.PIPE if keep_stdout else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        elapsed = time.perf_counter() - started
        if proc.returncode not in (0, 1):  # grep -c says 1 when it counts nothing
            raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr[-2000:]}")
        rss: float | None = None
        if use_gnu:
            m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
            rss = int(m.group(1)) / 1024 if m else None
        else:
            after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            rss = after / 1024 if after > before else None
        if elapsed < best:
            best, best_rss, out = elapsed, rss, proc.stdout or ""
    return best, best_rss, out


def measure(path: str, workers: int, with_query: bool, scan: str) -> None:
    """Child-process mode: read the log through the auditd source, print counts as JSON."""
    from rarebird.definitions.datafeed import load_datafeed
    from rarebird.sources import SourceOptions
    from rarebird.sources.auditd import AuditdSource

    datafeed = load_datafeed()
    options = SourceOptions(
        prefilter=datafeed.query.prefilter, extra={"workers": str(workers), "scan": scan}
    )
    source = AuditdSource(path, options)
    matches = datafeed.query.matches
    kept = 0
    started = time.perf_counter()
    cpu0 = time.process_time()
    for event in source:
        if not with_query or matches(event):
            kept += 1
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "cpu": time.process_time() - cpu0,
                "lines": source.stats.lines,
                "events": source.stats.events,
                "kept": kept,
                "prefiltered": source.stats.prefiltered,
                "skipped": source.stats.skipped_total,
            }
        )
    )


def job_run_takes_auditd(rarebird: str) -> bool:
    try:
        proc = subprocess.run(
            [rarebird, "job", "run", "--help"], capture_output=True, text=True, check=False
        )
    except OSError:
        return False
    return proc.returncode == 0 and "auditd" in proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    quick = os.environ.get("RAREBIRD_BENCH_QUICK") == "1"
    parser.add_argument("--events", type=int, default=100_000 if quick else 1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; best is kept")
    parser.add_argument("--full", action="store_true", help="also time the full parse")
    parser.add_argument("--measure", metavar="FILE", help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--with-query", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--scan", default="fast", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        measure(args.measure, args.workers, args.with_query, args.scan)
        return 0

    path = bench_file(args.events, args.seed)
    execs = args.events
    size_mb = path.stat().st_size / 1e6
    print(f"file: {path.relative_to(ROOT)}  {execs:,} exec events  {size_mb:,.0f} MB", flush=True)
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}", flush=True)
    subprocess.run(["cat", str(path)], stdout=subprocess.DEVNULL, check=False)  # warm the cache

    timings: list[Timing] = []
    ausearch = shutil.which("ausearch")
    if ausearch:
        for fmt in ("csv", "raw"):
            flag = ["--format", "csv"] if fmt == "csv" else ["--raw"]
            secs, rss, _ = run_timed(
                [ausearch, "--input", str(path), *flag], args.repeat, keep_stdout=False
            )
            timings.append(Timing(f"ausearch {' '.join(flag)}", secs, rss))
    else:
        print("ausearch not installed (Debian package auditd): no comparison", flush=True)
    grep = shutil.which("grep")
    if grep:
        secs, rss, out = run_timed([grep, "-c", "-E", GREP, str(path)], args.repeat)
        timings.append(
            Timing("grep -c -E exe=…/(names) (text-scan limit)", secs, rss, f"{out.strip()} lines")
        )

    me = [sys.executable, __file__, "--measure", str(path)]
    for workers in (1, 2):
        secs, rss, out = run_timed([*me, "--workers", str(workers)], args.repeat)
        info = json.loads(out)
        timings.append(
            Timing(
                f"rarebird auditd source, prefilter, {workers} worker{'s' if workers > 1 else ''}",
                secs,
                rss,
                f"{info['events']:,} events kept; in-loop {info['seconds']:.2f} s, "
                f"CPU {info['cpu']:.2f} s (this process)",
            )
        )
    secs, rss, out = run_timed([*me, "--with-query"], args.repeat)
    info = json.loads(out)
    timings.append(
        Timing("rarebird auditd source + datafeed query", secs, rss, f"{info['kept']:,} match")
    )
    rarebird = str(Path(sys.executable).with_name("rarebird"))
    if job_run_takes_auditd(rarebird):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [rarebird, "job", "run", "--quiet", "--input-format", "auditd",
                   "--store", str(Path(tmp) / "bench.db"), str(path)]  # fmt: skip
            try:
                secs, rss, _ = run_timed(cmd, 1, keep_stdout=False)
                timings.append(
                    Timing("rarebird job run --input-format auditd (end to end)", secs, rss)
                )
            except RuntimeError as exc:
                print(f"job run failed: {exc}", flush=True)
    if args.full:
        secs, rss, out = run_timed([*me, "--scan", "full"], 1)
        timings.append(Timing("rarebird auditd source, full parse", secs, rss))

    print()
    print(f"{'measurement':58} {'seconds':>8} {'exec ev/s':>12} {'peak RSS':>10}")
    for t in timings:
        rss = f"{t.rss_mb:,.0f} MB" if t.rss_mb is not None else "?"
        print(f"{t.name:58} {t.seconds:8.2f} {execs / t.seconds:12,.0f} {rss:>10}  {t.note}")

    ours = next(t for t in timings if t.name.endswith("1 worker"))
    verdicts = [
        (f">= {TARGET_RATE:,} exec events/s on one core", execs / ours.seconds >= TARGET_RATE)
    ]
    csv = next((t for t in timings if t.name == "ausearch --format csv"), None)
    raw = next((t for t in timings if t.name == "ausearch --raw"), None)
    if csv is not None:
        ratio = csv.seconds / ours.seconds
        verdicts.append(
            (
                f">= {TARGET_VS_CSV:.0f}x faster than ausearch --format csv ({ratio:.1f}x)",
                ratio >= TARGET_VS_CSV,
            )
        )
    if raw is not None:
        print(f"against ausearch --raw: {raw.seconds / ours.seconds:.2f}x")
    if ours.rss_mb is not None:
        verdicts.append(
            (
                f"peak RSS under {TARGET_RSS_MB:.0f} MB ({ours.rss_mb:.0f} MB)",
                ours.rss_mb < TARGET_RSS_MB,
            )
        )
    for text, ok in verdicts:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
