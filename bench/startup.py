"""Start-up: ``weakpg --help`` against ``python -c "import jax"``, and what ``import weakpg`` loads.

Each command runs in a new process, 7 times; the medians and their ratio are printed
(the bar: ``weakpg --help`` within 1.5x of importing JAX). Then the modules that
``import weakpg`` and ``import weakpg.envs`` bring in are checked for gymnax, gymnasium,
matplotlib and JAX. Run: ``python -m bench.startup``.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

REPEATS = 7
HEAVY = ("jax", "gymnax", "gymnasium", "matplotlib", "ray", "seaborn")


def median_seconds(args: list[str]) -> float:
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def loaded(statement: str) -> list[str]:
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return [name for name in HEAVY if name in out.stdout.split()]


def main() -> None:
    jax_import = median_seconds([sys.executable, "-c", "import jax"])
    help_time = median_seconds([sys.executable, "-m", "weakpg", "--help"])
    train_help = median_seconds([sys.executable, "-m", "weakpg", "train", "--help"])
    ratio = help_time / jax_import
    print(f"python -c 'import jax': {jax_import:.3f} s (median of {REPEATS})")
    verdict = "met" if ratio <= 1.5 else "NOT met"
    print(f"weakpg --help: {help_time:.3f} s, ratio {ratio:.2f} (bar 1.5: {verdict})")
    print(f"weakpg train --help: {train_help:.3f} s, ratio {train_help / jax_import:.2f}")
    for statement in ("import weakpg", "import weakpg.envs", "import weakpg._src.app.cli"):
        print(f"{statement}: loads {', '.join(loaded(statement)) or 'none'} of {', '.join(HEAVY)}")


if __name__ == "__main__":
    main()
