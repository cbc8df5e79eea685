"""Run every benchmark script in ``bench/`` (``*.py`` except this one and ``_*.py``), in name order.

Arguments after ``--`` are passed to every script (for instance ``-- --events 100000`` for a
quick run; every script must then accept them). Exits non-zero when a script failed.

    python bench/run_all.py
    python bench/run_all.py -- --events 100000
"""

from __future__ import annotations

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
    failed: list[str] = []
    for script in scripts():
        print(f"=== {script.name} {' '.join(extra)}".rstrip(), flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(script), *extra], check=False).returncode
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
