"""weakpg against Stable-Baselines3 and rejax on Pendulum-v1: wall-clock and env steps to a return.

Methods and their settings (``bench/peers_methods.py``):

- ``sb3-ppo``: Stable-Baselines3 PPO with rl-baselines3-zoo's hyperparams/ppo.yml for
  Pendulum-v1: n_envs 4, n_timesteps 1e5, MlpPolicy, n_steps 1024, gae_lambda 0.95,
  gamma 0.9, n_epochs 10, ent_coef 0.0, learning_rate 1e-3, clip_range 0.2, use_sde True,
  sde_sample_freq 4.
- ``sb3-sac``: SAC with the zoo's hyperparams/sac.yml: n_timesteps 20000, MlpPolicy,
  learning_rate 1e-3 (the rest SB3's defaults).
- ``rejax-ppo``, ``rejax-sac``: rejax's configs/gymnax/pendulum.yaml (PPO: swish, 100
  envs x 100 steps, 10 epochs, 10 minibatches, lr 0.001, max_grad_norm 10, gamma 0.995,
  gae_lambda 0.95, clip_eps 0.2, ent_coef 0, vf_coef 0.5, normalised observations,
  total_timesteps 150_000 with eval_freq 2000, which rejax's train runs as 750_000 env
  steps; SAC: swish, 1 env, buffer 10_000, fill_buffer 256, batch 256, lr 0.01, 1 epoch,
  gamma 0.99, polyak 0.98, target_entropy_ratio None, normalised observations,
  total_timesteps 10_000, eval_freq 100). rejax trains on gymnax's Pendulum-v1 (the same
  observations and dynamics) and is evaluated on gymnasium's like every other method.
- ``weakpg-pg-jd``, ``weakpg-pg-sf-rollout``: ``weakpg reproduce pendulum``'s setup
  (``PENDULUM``: linear Gaussian on 125 RBFs, sigma 1, gamma 0.95, batch 256, sgd 0.1 for
  PG-JD and 0.05 for PG-SF with the roll-out baseline, clipped at norm 100), 5M env steps.

Each (method, seed) is a fresh process with an empty JAX compilation cache, so building
and compiling the method count; the clock starts after the method's libraries are
imported (``IMPORTS``; weakpg loads gymnax's Pendulum on the clock) and stops while
``common_episode_return`` (``weakpg evaluate``'s protocol: 100 gymnasium episodes reset
with seeds 0..99, deterministic action, undiscounted return) scores the current policy.
Torch runs ``--torch-threads`` threads (default: every core, ``os.cpu_count()``; on a
shared, loaded machine two threads ran SB3 SAC 12x slower than one, so use 1 there). For
each threshold (-170, -150): the training seconds and env steps at the first evaluation
whose mean return reaches it, and the return at the method's standard budget; median
(min-max) over seeds, and weakpg's median seconds over the fastest peer's.

Run: ``python -m bench.peers [--seeds 5] [--methods ...] [--quick] [--out bench_peers.json]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.peers_eval import THRESHOLDS, common_episode_return
from bench.peers_methods import SETTINGS

__all__ = ["common_episode_return", "main", "run_child"]
PEERS = tuple(m for m in SETTINGS if not m.startswith("weakpg"))


def run_child(method: str, seed: int, quick: bool, torch_threads: int) -> dict[str, Any]:
    """One (method, seed) in a new process with a new, empty JAX compilation cache."""
    with tempfile.TemporaryDirectory(prefix="peers-jax-cache-") as cache:
        env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": cache}
        cmd = [sys.executable, "-m", "bench.peers", "--child", method, "--seeds", str(seed),
               "--torch-threads", str(torch_threads)]
        proc = subprocess.run(cmd + (["--quick"] if quick else []), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        return {"method": method, "seed": seed, "error": proc.stderr.strip().splitlines()[-20:]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _stats(values: list[float]) -> tuple[float, float, float]:
    """Median, min and max, where inf stands for a seed that never reached the threshold."""
    return statistics.median(values), min(values), max(values)


def _fmt(values: list[float], digits: int = 1, scale: float = 1.0, unit: str = "") -> str:
    med, lo, hi = (v / scale for v in _stats(values))
    reached = sum(math.isfinite(v) for v in values)

    def show(v: float) -> str:
        return f"{v:.{digits}f}{unit}" if math.isfinite(v) else "never"

    tail = "" if reached == len(values) else f" [{reached}/{len(values)} reached]"
    if not reached:
        return "never" + tail
    return f"{show(med)} ({show(lo)} to {show(hi)}){tail}"


def _first(result: dict[str, Any], threshold: float, key: str) -> float:
    point = result["first"][str(threshold)]
    return math.inf if point is None else float(point[key])


def table(results: list[dict[str, Any]]) -> tuple[str, dict[str, dict[str, float]]]:
    """The markdown table of the runs and, per threshold, each method's median seconds."""
    methods = list(dict.fromkeys(r["method"] for r in results if "error" not in r))
    head = ["Method", "Budget (env steps)"] + [f"s to {t:g}" for t in THRESHOLDS] + [
        f"steps to {t:g}" for t in THRESHOLDS] + ["Final return", "Final per seed (mean ± stderr)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    medians: dict[str, dict[str, float]] = {}
    for m in methods:
        runs = [r for r in results if r["method"] == m and "error" not in r]
        seconds = {t: [_first(r, t, "seconds") for r in runs] for t in THRESHOLDS}
        steps = {t: [_first(r, t, "env_steps") for r in runs] for t in THRESHOLDS}
        medians[m] = {str(t): _stats(seconds[t])[0] for t in THRESHOLDS}
        finals = [r["final"]["mean"] for r in runs]
        per_seed = ", ".join(f"{r['final']['mean']:.0f} ± {r['final']['stderr']:.0f}" for r in runs)
        cells = [m, f"{runs[0]['budget']:,}"] + [_fmt(seconds[t], unit=" s") for t in THRESHOLDS] + [
            _fmt(steps[t], 1, 1e3, "k") for t in THRESHOLDS] + [_fmt(finals, 0), per_seed]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines), medians


def ratios(medians: dict[str, dict[str, float]]) -> list[str]:
    """weakpg's median seconds over the fastest peer's, per threshold."""
    out = []
    for t in THRESHOLDS:
        peers = {m: v[str(t)] for m, v in medians.items() if m in PEERS}
        if not peers:
            continue
        fastest = min(peers, key=peers.get)
        if not math.isfinite(peers[fastest]):
            out.append(f"at {t:g}: no peer's median seed reached it")
            continue
        for m, v in medians.items():
            if m.startswith("weakpg"):
                ratio = v[str(t)] / peers[fastest]
                shown = f"{ratio:.2f}" if math.isfinite(ratio) else "never (its median seed did not reach it)"
                out.append(f"at {t:g}: {m} / fastest peer ({fastest}, {peers[fastest]:.1f} s) = {shown}")
    return out


def _atomic_json(path: Path, data: Any) -> None:
    from weakpg._src.runs import atomic_write

    atomic_write(path, (json.dumps(data, indent=1) + "\n").encode())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (with --child: the seed)")
    parser.add_argument("--methods", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--quick", action="store_true", help="tiny budgets: a smoke run, seconds a method")
    parser.add_argument("--out", type=Path, default=Path("bench_peers.json"))
    parser.add_argument("--torch-threads", type=int, default=os.cpu_count() or 1,
                        help="torch's threads for Stable-Baselines3 (default: the machine's cores)")
    parser.add_argument("--child", choices=list(SETTINGS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        from bench.peers_methods import run

        print(json.dumps(run(args.child, args.seeds, args.quick, args.torch_threads)))
        return 0
    if args.seeds < 1:
        parser.error(f"--seeds must be at least 1, got {args.seeds}")
    if args.torch_threads < 1:
        parser.error(f"--torch-threads must be at least 1, got {args.torch_threads}")
    out = args.out.resolve()
    if not out.parent.is_dir():
        parser.error(f"--out's folder {out.parent} does not exist")
    results, start = [], time.perf_counter()
    for method in args.methods:
        for seed in range(args.seeds):
            began = time.perf_counter()
            result = run_child(method, seed, args.quick, args.torch_threads)
            results.append(result)
            if "error" in result:
                print(f"{method} seed {seed}: FAILED\n  " + "\n  ".join(result["error"]), flush=True)
                continue
            final = result["final"]
            print(f"{method} seed {seed}: {result['train_seconds']:.1f} s training, "
                  f"{result['eval_seconds']:.1f} s evaluating ({time.perf_counter() - began:.1f} s in all), "
                  f"final {final['mean']:.1f} ± {final['stderr']:.1f}", flush=True)
    _atomic_json(out, {"quick": args.quick, "seeds": args.seeds, "torch_threads": args.torch_threads,
                       "cpu_count": os.cpu_count(), "results": results})
    text, medians = table(results)
    print(f"\nPendulum-v1, {args.seeds} seed(s){', QUICK budgets' if args.quick else ''}; "
          f"{time.perf_counter() - start:.0f} s in all; raw results in {out}\n")
    print(text)
    for line in ratios(medians):
        print(line)
    return 1 if any("error" in r for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
