"""``weakpg evaluate RUN``: real episodes of a trained policy, into ``RUN/evaluation.json``.

The numbers are those other libraries report (Stable-Baselines3's ``evaluate_policy``,
rl-baselines3-zoo): the undiscounted return of whole episodes with the environment's
registered time limit, episode i reset with seed ``seed + i`` (``episodes``), the mean
and its standard error over episodes (sample standard deviation / sqrt(episodes); null for
one episode). The file records the protocol (environment id, seeds, stochastic or not, the
checkpoint and its iteration) and is the same, byte for byte, every time the same command
runs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import typer

from weakpg._src.app.failures import one_line_errors

EVALUATION_FILE = "evaluation.json"


def evaluate(agent: Any, env_id: str, *, episodes: int = 100, seed: int = 0,
             stochastic: bool = False) -> dict[str, Any]:
    """The evaluation record of ``agent`` on ``env_id`` (``gymnasium:<ID>`` or a JAX id)."""
    import numpy as np

    from weakpg._src.app import episodes as ep
    from weakpg._src.config import MAX_SEED, check_int_range
    from weakpg._src.envs.registry import GYMNASIUM_PREFIX, make

    check_int_range("episodes", episodes, 1)
    check_int_range("seed", seed, 0, MAX_SEED - episodes + 1)
    seeds = np.arange(seed, seed + episodes)
    if env_id.startswith(GYMNASIUM_PREFIX):
        env = ep.make_gymnasium(env_id.removeprefix(GYMNASIUM_PREFIX))
        try:
            ep.check_fits(agent, env, env_id)
            pairs = [ep.gymnasium_episode(agent, env, int(s), stochastic=stochastic) for s in seeds]
            limit = env.spec.max_episode_steps
        finally:
            env.close()
        returns, lengths = (np.array(column) for column in zip(*pairs))
    else:  # the run's own environment (a Brax study's on its backend), else env_id's
        from weakpg._src.app.loading import run_env_id

        env = agent.env if env_id == run_env_id(agent.config) else make(env_id)
        ep.check_fits(agent, env, env_id)
        returns, lengths = ep.jax_episodes(agent, env, seeds, stochastic=stochastic)
        limit = env.max_episode_steps
    if not np.isfinite(returns).all():
        raise ValueError(f"an episode's return is not finite: {returns.tolist()}")
    stderr = float(np.std(returns, ddof=1) / math.sqrt(episodes)) if episodes > 1 else None
    return {
        "env": env_id, "episodes": episodes, "seeds": [int(seeds[0]), int(seeds[-1])],
        "stochastic": stochastic, "max_episode_steps": int(limit),
        "checkpoint": str(agent.checkpoint), "iteration": agent.iteration, "env_steps": agent.env_steps,
        "mean": float(np.mean(returns)), "stderr": stderr,
        "returns": [float(r) for r in returns], "lengths": [int(n) for n in lengths],
    }


def summary(record: dict[str, Any]) -> str:
    """One line: mean +- stderr over the episodes, and the protocol."""
    action = "sampled actions" if record["stochastic"] else "mean (most likely) action"
    first, last = record["seeds"]
    if record["stderr"] is None:
        over = f"one episode, seed {first}"
        value = f"{record['mean']:.1f}"
    else:
        over = f"mean ± standard error over {record['episodes']} episodes, seeds {first}..{last}"
        value = f"{record['mean']:.1f} ± {record['stderr']:.1f}"
    return (f"{record['env']}: return {value} ({over}, {action}, checkpoint at iteration "
            f"{record['iteration']})")


def register(app: typer.Typer) -> None:
    """Add ``weakpg evaluate`` to ``app``."""

    @app.command("evaluate")
    def evaluate_command(
        run: Path = typer.Argument(..., help="A run folder written by weakpg train (or reproduce)."),
        episodes: int = typer.Option(100, help="Episodes (>= 1); episode i is reset with seed SEED + i."),
        seed: int = typer.Option(0, help="Seed of the first episode."),
        stochastic: bool = typer.Option(False, "--stochastic", help="Sample actions instead of taking "
                                        "the mean (Gaussian) or most likely (softmax) one."),
        env: str = typer.Option(None, help="Environment of the episodes: gymnasium:<ID> or a JAX id "
                                "(Pendulum-v1: the JAX environment's own episodes). Default: the run's, "
                                "on its gymnasium twin when it has one (every gymnax id)."),
        checkpoint: Path = typer.Option(None, help="Checkpoint file to evaluate (default: the run's "
                                        "checkpoint.npz, its last)."),
    ) -> None:
        """Run real episodes of a trained policy (the registered time limit, one seed per episode) and
        write the mean, its standard error and every return to RUN/evaluation.json."""
        with one_line_errors():
            from weakpg._src import runs
            from weakpg._src.app import episodes as ep
            from weakpg._src.app.loading import load, run_env_id
            from weakpg._src.config import check_int_range

            check_int_range("episodes", episodes, 1)
            runs.open_run(run)
            runs.check_writable(run)
            agent = load(run, checkpoint)
            record = evaluate(agent, ep.episode_env_id(run_env_id(agent.config), env), episodes=episodes,
                              seed=seed, stochastic=stochastic)
            runs.write_json(run / EVALUATION_FILE, record)
        typer.echo(summary(record))
        typer.echo(f"wrote {run / EVALUATION_FILE}")
