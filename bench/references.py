"""Reference throughputs for Pendulum-v1 rollouts under a stochastic policy.

Two yardsticks for ``bench/throughput.py``:

- ``raw_scan_steps_per_second``: the practical limit in JAX, a jitted ``lax.scan`` of
  the Pendulum dynamics written inline (float32, identical to gymnax) over a batch of
  lanes, with one Gaussian draw per lane per step and nothing else. The noise can be
  drawn in several ways; every way is timed and the fastest is the limit.
- ``gymnasium_steps_per_second``: a plain gymnasium loop, one step per Python call, as a
  user would write it.

Run ``python -m bench.references`` for a table. Figures are steps per second.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array

IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")

# Pendulum-v1 constants, as in gymnax's EnvParams and gymnasium's PendulumEnv.
DT = 0.05
G = 10.0
M = 1.0
L = 1.0
MAX_SPEED = 8.0
MAX_TORQUE = 2.0


def _pendulum_step(th: Array, thdot: Array, eps: Array) -> tuple[Array, Array, Array]:
    """One step of Pendulum-v1 under u = clip(-2 sin(th) - 0.5 thdot + eps, -2, 2).

    Returns the next (th, thdot) and the reward, elementwise over any shape.
    """
    u = jnp.clip(-2.0 * jnp.sin(th) - 0.5 * thdot + eps, -MAX_TORQUE, MAX_TORQUE)
    normalized = (th + jnp.pi) % (2 * jnp.pi) - jnp.pi
    reward = -(normalized**2 + 0.1 * thdot**2 + 0.001 * u**2)
    newthdot = thdot + (3 * G / (2 * L) * jnp.sin(th) + 3.0 / (M * L**2) * u) * DT
    newthdot = jnp.clip(newthdot, -MAX_SPEED, MAX_SPEED)
    return th + newthdot * DT, newthdot, reward


def _lane_split(key: Array, th: Array, thdot: Array, horizon: int) -> Array:
    """Each lane carries its own key and splits it once per step (``vmap`` of ``scan``)."""

    def lane(key, th, thdot):
        def step(carry, _):
            key, th, thdot, total = carry
            key, sub = jax.random.split(key)
            th, thdot, reward = _pendulum_step(th, thdot, jax.random.normal(sub))
            return (key, th, thdot, total + reward), None

        return jax.lax.scan(step, (key, th, thdot, jnp.zeros_like(th)), length=horizon)[0][3]

    keys = jax.random.split(key, th.shape[0])
    return jnp.sum(jax.vmap(lane)(keys, th, thdot))


def _lane_fold_in(key: Array, th: Array, thdot: Array, horizon: int) -> Array:
    """Each lane draws from ``fold_in(lane_key, t)`` (``vmap`` of ``scan``)."""

    def lane(key, th, thdot):
        def step(carry, t):
            th, thdot, total = carry
            th, thdot, reward = _pendulum_step(th, thdot, jax.random.normal(jax.random.fold_in(key, t)))
            return (th, thdot, total + reward), None

        return jax.lax.scan(step, (th, thdot, jnp.zeros_like(th)), jnp.arange(horizon))[0][2]

    keys = jax.random.split(key, th.shape[0])
    return jnp.sum(jax.vmap(lane)(keys, th, thdot))


def _batch_fold_in(key: Array, th: Array, thdot: Array, horizon: int) -> Array:
    """One ``scan`` over the batch; step t draws shape (num_lanes,) from ``fold_in(key, t)``."""

    def step(carry, t):
        th, thdot, total = carry
        eps = jax.random.normal(jax.random.fold_in(key, t), th.shape)
        th, thdot, reward = _pendulum_step(th, thdot, eps)
        return (th, thdot, total + reward), None

    return jnp.sum(jax.lax.scan(step, (th, thdot, jnp.zeros_like(th)), jnp.arange(horizon))[0][2])


def _block(key: Array, th: Array, thdot: Array, horizon: int) -> Array:
    """All noise drawn before the ``scan`` as one (horizon, num_lanes) block."""

    def step(carry, eps):
        th, thdot, total = carry
        th, thdot, reward = _pendulum_step(th, thdot, eps)
        return (th, thdot, total + reward), None

    eps = jax.random.normal(key, (horizon,) + th.shape)
    return jnp.sum(jax.lax.scan(step, (th, thdot, jnp.zeros_like(th)), eps)[0][2])


VARIANTS: dict[str, Callable[[Array, Array, Array, int], Array]] = {
    "lane_split": _lane_split,
    "lane_fold_in": _lane_fold_in,
    "batch_fold_in": _batch_fold_in,
    "block": _block,
}


def _check(num_lanes: int, impl: str, horizon: int, repeats: int) -> None:
    if impl not in IMPLS:
        raise ValueError(f"impl={impl!r}; expected one of {IMPLS}")
    for name, value in (("num_lanes", num_lanes), ("horizon", horizon), ("repeats", repeats)):
        if value < 1:
            raise ValueError(f"{name}={value}; expected a positive integer")


def _best_seconds(fn: Callable[..., Array], *args: Array, repeats: int) -> float:
    """Best wall time of ``repeats`` runs of ``fn(*args)`` after one warm-up (compile) run."""
    fn(*args).block_until_ready()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(*args).block_until_ready()
        best = min(best, time.perf_counter() - start)
    return best


def raw_scan_variants(num_lanes: int, impl: str, *, horizon: int = 200, repeats: int = 5) -> dict[str, float]:
    """Steps per second (num_lanes * horizon / best time) of every noise-drawing variant.

    Args:
      num_lanes: number of independent Pendulum rollouts run side by side.
      impl: PRNG implementation of the keys, one of ``IMPLS``.
      horizon: steps per rollout.
      repeats: timed runs per variant after a warm-up; the best is kept.

    Returns:
      ``{variant name: steps per second}`` for each entry of ``VARIANTS``.
    """
    _check(num_lanes, impl, horizon, repeats)
    key = jax.random.key(0, impl=impl)
    start_key = jax.random.key(1)
    th = jax.random.uniform(start_key, (num_lanes,), minval=-jnp.pi, maxval=jnp.pi)
    thdot = jax.random.uniform(jax.random.fold_in(start_key, 1), (num_lanes,), minval=-1.0, maxval=1.0)
    rates = {}
    for name, variant in VARIANTS.items():
        rollout = jax.jit(variant, static_argnums=3)
        seconds = _best_seconds(rollout, key, th, thdot, horizon, repeats=repeats)
        rates[name] = num_lanes * horizon / seconds
    return rates


def raw_scan_steps_per_second(num_lanes: int, impl: str, *, horizon: int = 200, repeats: int = 5) -> float:
    """The fastest of ``raw_scan_variants``: the raw-scan limit in steps per second."""
    return max(raw_scan_variants(num_lanes, impl, horizon=horizon, repeats=repeats).values())


def gymnasium_steps_per_second(num_steps: int = 20000) -> float:
    """Steps per second of a gymnasium Pendulum-v1 loop with N(0, 1) torques.

    One ``env.step`` per Python call, resetting when the 200-step time limit truncates.
    """
    import gymnasium

    if num_steps < 1:
        raise ValueError(f"num_steps={num_steps}; expected a positive integer")
    rng = np.random.default_rng(0)
    env = gymnasium.make("Pendulum-v1")
    env.reset(seed=0)
    start = time.perf_counter()
    for _ in range(num_steps):
        _, _, terminated, truncated, _ = env.step(np.array([rng.normal()]))
        if terminated or truncated:
            env.reset()
    seconds = time.perf_counter() - start
    env.close()
    return num_steps / seconds


def main() -> None:
    print(f"JAX {jax.__version__} on {jax.devices()[0].platform}; Pendulum-v1, horizon 200; steps/s")
    names = list(VARIANTS)
    header = f"{'lanes':>6} {'impl':<13}" + "".join(f"{n:>14}" for n in names) + f"{'best':>14}"
    print(header)
    for num_lanes in (1024, 4096, 16384):
        for impl in IMPLS:
            rates = raw_scan_variants(num_lanes, impl)
            cells = "".join(f"{rates[n]:>14.3e}" for n in names)
            print(f"{num_lanes:>6} {impl:<13}{cells}{max(rates.values()):>14.3e}")
    print(f"gymnasium loop (1 env, Python): {gymnasium_steps_per_second():.3e}")


if __name__ == "__main__":
    main()
