"""Run every benchmark script in ``bench/`` (``*.py`` except this one and ``_*.py``), in name order.

``--quick`` sets ``RAREBIRD_BENCH_QUICK=1`` in the scripts' environment: a script that knows it
runs a smaller version (``ecs_throughput.py``: 100,000 events instead of 1,000,000). Arguments
after ``--`` are passed to every script (each must then accept them). Exits non-zero when a
script failed.

    python bench/run_all.py
    python bench/run_all.py --quick
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def scripts() -> list[Path]:
    me = Path(__file__).resolve()
    return sorted(p for p in HERE.glob("*.py") if p.resolve() != me and not p.name.startswith("_"))


def main(argv: list[str]) -> int:
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    env = dict(os.environ)
    if "--quick" in own:
        env["RAREBIRD_BENCH_QUICK"] = "1"
    failed: list[str] = []
    for script in scripts():
        print(f"=== {script.name} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        code = subprocess.run(
            [sys.executable, str(script), *extra], check=False, env=env
        ).returncode
        elapsed = time.perf_counter() - started
        print(f"=== {script.name}: exit {code} after {elapsed:.1f} s\n", flush=True)
        if code != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
