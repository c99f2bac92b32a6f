"""The host driver around ``make_train``: run folders, checkpoints, resume, many seeds.

``train`` and ``train_seeds`` run the compiled chunk of ``make_train_chunk`` (a few
evaluation intervals) again and again until the budget is spent. Between chunks they
append the new rows to each run folder's ``metrics.csv`` and save ``checkpoint.npz``
(both atomic, ``checkpoints``), so ``resume=True`` continues from the last checkpoint and
writes exactly the rows an uninterrupted run writes (all but ``wall_seconds``), even after
``kill -9``, in a program of the seeds the run started with (others are refused).
``train_seeds`` trains several seeds as one vmapped program: one compilation, one
run folder per seed. ``precompile`` compiles a run's programs without running them.
Where JAX's persistent cache is on, the compiled programs are also kept in the program
cache (``program_cache``), which a later process loads without tracing them.

A nan or an inf stops training with ``NonFiniteError`` (what became non-finite, the
iteration, the seed, the last finite state and the rows up to it). A non-finite gradient
estimate or update is never taken (``make_train_chunk``): the run folder gets the rows
and the checkpoint up to that iteration. A non-finite evaluation keeps the folder as it
was after the previous chunk. In both the folder holds only finite parameters.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from weakpg._src import checkpoints, program_cache
from weakpg._src.checkpoints import Row
from weakpg._src.compiler_options import CPU_COMPILER_OPTIONS, for_backend
from weakpg._src.config import MAX_SEED, TrainConfig, check_int_range, check_type
from weakpg._src.envs.base import Environment
from weakpg._src.errors import NonFiniteError
from weakpg._src.gradients import check_estimator
from weakpg._src.policies import Policy
from weakpg._src.train import (
    FAULTS,
    TrainState,
    budget_spent,
    default_evaluator,
    hyper,
    init_state,
    make_train_chunk,
)

METRIC_FIELDS = ("iteration", "env_steps", "wall_seconds", "discounted_return", "episode_return",
                 "grad_norm", "grad_stderr_norm", "step_size")
EVALUATION_FIELDS = ("discounted_return", "episode_return")  # finite in every row
CHUNK_ITERATIONS = 20  # iterations between host syncs (rows, checkpoints, progress)
SEED_AXIS = "seed"  # the vmapped axis of a many-seed chunk
Callback = Callable[[Row], bool | None]
RowsObserver = Callable[[int, list[Row]], None]
_UNSET: Any = object()


def chunk_intervals(config: TrainConfig) -> int:
    """Evaluation intervals per compiled chunk: about ``CHUNK_ITERATIONS`` iterations."""
    intervals = max(1, CHUNK_ITERATIONS // config.eval_every)
    if config.iterations is not None:
        intervals = min(intervals, -(-config.iterations // config.eval_every))
    return intervals


def _init_program(policy: Policy, config: TrainConfig, batched: bool) -> Callable[[Any], TrainState]:
    """``init_state`` from a uint32 seed (a vector of them when ``batched``), to compile once.

    Built eagerly, the initial state costs a compilation per operation.
    """
    def init(seed: jax.Array) -> TrainState:
        return init_state(policy, config, key=jax.random.key(seed))

    return jax.vmap(init) if batched else init


@functools.lru_cache(maxsize=32)
def _programs(env: Environment, policy: Policy, config: TrainConfig, episode_length: int | None,
              num_seeds: int) -> tuple[jax.stages.Compiled, jax.stages.Compiled]:
    """The compiled ``init`` (seeds -> state) and chunk ((state, hyper) -> (state, rows)).

    One pair per (env, policy, config less seed, alpha_0 and p, seed count), from the
    program cache when it holds them: then nothing is traced or compiled.
    """
    batched = num_seeds > 1
    seeds = jax.ShapeDtypeStruct((num_seeds,) if batched else (), jnp.uint32)
    options = for_backend(CPU_COMPILER_OPTIONS)
    parts = (env, policy, config, episode_length, num_seeds)
    init = _init_program(policy, config, batched)

    def build_init() -> tuple[Callable[[Any], TrainState], tuple[Any]]:
        return init, (seeds,)

    def build_chunk() -> tuple[Callable[..., Any], tuple[Any, Any]]:
        axis = SEED_AXIS if batched else None
        chunk = make_train_chunk(env, policy, config, num_intervals=chunk_intervals(config), axis_name=axis,
                                 evaluate=default_evaluator(env, policy, config, episode_length))
        args = jax.eval_shape(init, seeds), jax.eval_shape(lambda: hyper(config))
        return (jax.vmap(chunk, (0, None), axis_name=axis) if batched else chunk), args

    check_estimator(env, policy, **config.estimator_options())  # a cached program too is refused
    return (program_cache.compiled("init", parts, build_init),
            program_cache.compiled("chunk", parts, build_chunk, options))


def _program_config(config: TrainConfig) -> TrainConfig:
    """The settings a compiled program depends on: the seed, alpha_0 and p are its inputs."""
    return dataclasses.replace(config, seed=0, lr=TrainConfig.lr, schedule_power=TrainConfig.schedule_power)


def precompile(env: Environment, policy: Policy, config: TrainConfig, *, num_seeds: int = 1,
               episode_length: int | None = None) -> None:
    """Compile the programs ``train_seeds`` runs for ``config`` and ``num_seeds`` seeds; run none.

    A later ``train_seeds`` call in this process with the same settings and as many seeds
    (any seeds, step size and schedule power) finds them compiled: its wall-clock is
    training alone.
    """
    check_type("num_seeds", num_seeds, int)
    check_int_range("num_seeds", num_seeds, 1)
    _programs(env, policy, _program_config(config), episode_length, num_seeds)


def _evaluation_fault(rows: list[Row]) -> int | None:
    """The index of the first row whose evaluation is not finite, if any."""
    return next((i for i, r in enumerate(rows) if not np.isfinite([r[k] for k in EVALUATION_FIELDS]).all()),
                None)


def _non_finite(what: str, iteration: int, seed: int, run_dir: Path | None, kept: str, state: TrainState,
                rows: list[Row]) -> NonFiniteError:
    where = "" if run_dir is None else f"; {run_dir} keeps {kept}" if kept else "; no checkpoint was written"
    return NonFiniteError(f"{what} became non-finite (nan or inf) at iteration {iteration} of seed {seed}; "
                          f"training stopped{where}", what=what, iteration=iteration, seed=seed,
                          state=state, rows=rows)


def _new_rows(chunk_rows: dict[str, np.ndarray], t0: float, t1: float) -> list[Row]:
    """The valid rows of one seed's chunk; wall-clock interpolated by iteration in [t0, t1]."""
    valid = np.flatnonzero(chunk_rows["valid"])
    its = chunk_rows["iteration"]
    span = max(int(its[-1]) - int(its[0]), 1)
    out = []
    for i in valid:
        row = {k: (int(v[i]) if k in ("iteration", "env_steps") else float(v[i]))
               for k, v in chunk_rows.items() if k != "valid"}
        row["wall_seconds"] = t0 + (t1 - t0) * (int(its[i]) - int(its[0])) / span
        out.append({k: row[k] for k in METRIC_FIELDS})
    return out


def train_seeds(env: Environment, policy: Policy, config: TrainConfig, *, seeds: Sequence[int],
                run_dirs: Sequence[str | Path] | None = None, resume: bool = False,
                episode_length: int | None = None,
                callback: Callback | None = None,
                on_rows: RowsObserver | None = None,
                before_training: Callable[[], None] | None = None) -> tuple[TrainState, list[list[Row]]]:
    """Train ``config`` from each of ``seeds`` in one vmapped program (one compilation).

    Args:
      seeds: the PRNG seeds (``config.seed`` is ignored); each run equals
        ``train(..., dataclasses.replace(config, seed=s))``'s up to float rounding.
      run_dirs: one folder per seed for ``metrics.csv`` and ``checkpoint.npz``.
      resume: continue each run from its folder's checkpoint.
      episode_length: steps of the evaluation's episode return (default: the task's).
      callback: receives every new row (with its "seed"); returning False stops training
        after the current chunk.
      on_rows: receives ``(i, rows)``, all rows so far of ``seeds[i]`` (what its
        ``metrics.csv`` holds, with ``run_dirs``), whenever they change: once a resume has
        loaded them and after each chunk that adds some, once they are saved.
      before_training: called once the programs are ready and every folder of a resume
        has been read, before the first chunk: what it writes (the command line: a resumed
        run's new budget) is not written for a folder that cannot be continued.

    Returns the final states (leading axis: seed) and each seed's rows. Raises
    ``NonFiniteError`` when a gradient estimate, the parameters or an evaluation becomes
    non-finite (see the module docstring); the run folders keep their last finite state.
    """
    seeds = list(seeds)
    for seed in seeds:
        check_type("seed", seed, int)
        check_int_range("seed", seed, 0, MAX_SEED)
    if not seeds:
        raise ValueError("seeds must hold at least one seed, got []")
    batched = len(seeds) > 1
    if run_dirs is not None and len(run_dirs) != len(seeds):
        raise ValueError(f"run_dirs must hold one folder per seed ({len(seeds)}), got {len(run_dirs)}")
    dirs = [Path(d) for d in run_dirs] if run_dirs is not None else None
    if resume and dirs is None:
        raise ValueError("resume=True needs the run folders (run_dirs or run_dir) to resume from")
    if resume:
        checkpoints.check_resume(dirs, seeds)
    init, chunk = _programs(env, policy, _program_config(config), episode_length, len(seeds))
    if dirs is not None and not resume:
        for d in dirs:
            d.mkdir(parents=True, exist_ok=True)
    state = init(np.asarray(seeds if batched else seeds[0], np.uint32))
    rows, offsets = [[] for _ in seeds], [0.0] * len(seeds)
    if resume:
        states = [jax.tree.map(lambda x, i=i: x[i], state) for i in range(len(seeds))] if batched else [state]
        for i, d in enumerate(dirs):
            states[i], offsets[i], rows[i] = checkpoints.load(d, states[i], METRIC_FIELDS)
            if on_rows is not None and rows[i]:
                on_rows(i, rows[i])
        state = jax.tree.map(lambda *x: jnp.stack(x), *states) if batched else states[0]
    if before_training is not None:
        before_training()
    h, start, stop = hyper(config), time.perf_counter(), False

    def spent(s: TrainState) -> np.ndarray:
        return np.atleast_1d(budget_spent(config, np.asarray(s.iteration), np.asarray(s.env_steps)))

    while not (stop or spent(state).all()):
        t0 = time.perf_counter() - start
        previous = state
        state, chunk_rows = chunk(state, h)
        chunk_rows = jax.device_get(chunk_rows)
        t1 = time.perf_counter() - start
        faults = []
        for i, seed in enumerate(seeds):
            def mine(tree: Any, i: int = i) -> Any:
                return jax.tree.map(lambda x: x[i], tree) if batched else tree

            seed_rows, seed_state = mine(chunk_rows), mine(state)
            new = _new_rows(seed_rows, t0 + offsets[i], t1 + offsets[i])
            bad_row = _evaluation_fault(new)
            run_dir = None if dirs is None else dirs[i]
            if bad_row is not None:  # the state and rows of the previous chunk are the last kept
                kept = "its checkpoint before that" if rows[i] else ""
                faults.append(_non_finite("the evaluation's return", new[bad_row]["iteration"], seed, run_dir,
                                          kept, mine(previous), rows[i]))
                continue
            rows[i] += new
            if dirs is not None and new:
                checkpoints.save(dirs[i], seed_state, rows[i], seeds)
            if on_rows is not None and new:
                on_rows(i, rows[i])
            code = int(seed_rows["fault"][-1])
            if code:
                iteration = int(seed_state.iteration)
                faults.append(_non_finite(FAULTS[code], iteration, seed, run_dir,
                                          f"the last finite state, at iteration {iteration}", seed_state,
                                          rows[i]))
            for row in new:
                if callback is not None and callback({**row, "seed": seed}) is False:
                    stop = True
        if faults:
            raise faults[0]
    return state, rows


def train(env: Environment, policy: Policy, config: TrainConfig, *, iterations: int | None = _UNSET,
          env_steps: int | None = _UNSET, eval_every: int | None = None, eval_episodes: int | None = None,
          episode_length: int | None = None, run_dir: str | Path | None = None, resume: bool = False,
          callback: Callback | None = None) -> tuple[TrainState, list[Row]]:
    """Run Algorithm 2 from ``config.seed`` until ``iterations`` or ``env_steps`` is spent.

    Evaluates at iteration 0, every ``eval_every`` iterations and at the end. The keyword
    arguments, when given, replace the config's fields of the same name (``iterations``
    and ``env_steps`` together: the one not given becomes None). With ``run_dir``, rows go
    to ``metrics.csv`` and the state to ``checkpoint.npz`` after every chunk; ``resume``
    continues from the checkpoint. ``callback(row)`` runs for every row; returning False
    stops training after the current chunk. Returns the final state and the rows.
    """
    changes = {k: v for k, v in (("eval_every", eval_every), ("eval_episodes", eval_episodes))
               if v is not None}
    if iterations is not _UNSET or env_steps is not _UNSET:
        changes["iterations"] = None if iterations is _UNSET else iterations
        changes["env_steps"] = None if env_steps is _UNSET else env_steps
    config = dataclasses.replace(config, **changes)
    state, (rows,) = train_seeds(env, policy, config, seeds=[config.seed],
                                 run_dirs=None if run_dir is None else [run_dir], resume=resume,
                                 episode_length=episode_length,
                                 callback=None if callback is None else lambda r: callback(
                                     {k: v for k, v in r.items() if k != "seed"}))
    return state, rows
