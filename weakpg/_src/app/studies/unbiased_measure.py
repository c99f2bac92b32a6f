"""The measurement of the unbiasedness study: running means of an estimator against the exact gradient.

``settings`` names the test beds (``problems.lqr_problem``, ``problems.finite_mdp_problem``)
and their sample sizes. ``measure`` runs one jitted estimator of ``chunk`` samples on
independent keys; the chunks are pooled into running means at n = chunk, 2 chunk,
4 chunk, ... with their standard errors (``pool_chunks``, exactly what the n samples
together would give), and every gradient element i gets
z_i = (mean_i - exact_i) / stderr_i. ``csv_rows`` flattens them into the study's CSV.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import numpy as np

from weakpg._src.app.studies.problems import Problem, finite_mdp_problem, flatten, lqr_problem
from weakpg._src.gradients import make_gradient_estimator
from weakpg._src.policies import Params, Policy
from weakpg._src.testing import z_scores

Array = jax.Array


class Setting(NamedTuple):
    """A test bed, its sample sizes n = chunk, 2 chunk, ..., chunk * num_chunks (a power
    of two), and whether the control runs on it."""

    problem: Problem
    chunk: int
    num_chunks: int
    control: bool


class Running(NamedTuple):
    """Running estimates of one estimator on one problem, at K sample sizes.

    Attributes:
      n: (K,) samples pooled, chunk * 2^k.
      env_steps: (K,) environment steps those samples cost.
      mean, stderr: (K, P) pooled mean and standard error of the P flattened gradient elements.
      z: (K, P) (mean - exact) / stderr.
    """

    n: np.ndarray
    env_steps: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    z: np.ndarray


def settings(quick: bool) -> list[Setting]:
    """The test beds: the scalar LQR at gamma 0.9 in quick mode (every distinct estimator
    costs seconds of compilation); in full mode the scalar and 2-D LQR at gamma 0.9 and
    0.99 and two random 5x3 MDPs at gamma 0.9, n from 65k (gamma 0.99: 100-500 steps a
    sample) to 524k. The control runs at gamma 0.9 only: at 0.99 its spread is that of
    plain SF, so even its bias of the whole gradient needs millions of samples to show."""
    if quick:
        return [Setting(lqr_problem("scalar LQR", 0.9), 2048, 8, control=True)]
    return [
        Setting(lqr_problem("scalar LQR", 0.9), 16384, 32, control=True),
        Setting(lqr_problem("scalar LQR", 0.99), 4096, 16, control=False),
        Setting(lqr_problem("2-D LQR", 0.9), 16384, 16, control=True),
        Setting(lqr_problem("2-D LQR", 0.99), 4096, 16, control=False),
        Setting(finite_mdp_problem(0, 0.9), 8192, 16, control=True),
        Setting(finite_mdp_problem(1, 0.9), 8192, 16, control=True),
    ]


def element_names(tree: Params) -> list[str]:
    """Names of the flattened elements: "weights[0,1]", "logits[4,2]"."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        base = "".join(str(getattr(p, "key", p)) for p in path)
        names += [f"{base}[{','.join(map(str, i))}]" for i in np.ndindex(np.shape(leaf))]
    return names


def pool_chunks(means: np.ndarray, stderrs: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard error of the first k chunks pooled, for k = 1, 2, 4, ..., C.

    Chunk c has ``chunk`` = m samples, mean m_c and stderr s_c, so its sum of squared
    deviations is D_c = (m - 1) m s_c^2. Pooling k chunks: M = mean_c m_c,
    D = sum_c D_c + m sum_c (m_c - M)^2, stderr = sqrt(D / (k m - 1) / (k m)), exactly
    what the k m samples together would give.

    Args:
      means, stderrs: (C, P), C a power of two.
      chunk: samples per chunk.
    Returns:
      (K, P) means and standard errors, K = log2(C) + 1.
    """
    pooled_means, pooled_stderrs = [], []
    for k in 2 ** np.arange(int(np.log2(len(means))) + 1):
        m_c, s_c = means[:k], stderrs[:k]
        mean = m_c.mean(axis=0)
        squares = np.sum((chunk - 1) * chunk * s_c**2 + chunk * (m_c - mean) ** 2, axis=0)
        n = k * chunk
        pooled_means.append(mean)
        pooled_stderrs.append(np.sqrt(squares / (n - 1) / n))
    return np.stack(pooled_means), np.stack(pooled_stderrs)


def measure(problem: Problem, policy: Policy, options: dict[str, Any], key: Array, *,
            chunk: int, num_chunks: int, compiler_options: dict[str, Any] | None = None) -> Running:
    """Running estimates of one estimator (``make_gradient_estimator`` ``options``) of
    ``problem``'s gradient under ``policy``, from ``num_chunks`` independent chunks of
    ``chunk`` samples (keys ``fold_in(key, c)``), against ``problem.exact``.

    A fresh jit (with XLA ``compiler_options``) each call, so a patched distribution is
    traced anew.
    """
    estimate = jax.jit(make_gradient_estimator(problem.env, policy, gamma=problem.gamma,
                                               num_samples=chunk, **options),
                       compiler_options=compiler_options)
    outs = [estimate(jax.random.fold_in(key, c), problem.params) for c in range(num_chunks)]
    means = np.stack([flatten(o.mean) for o in outs])
    stderrs = np.stack([flatten(o.stderr) for o in outs])
    steps = np.cumsum([int(o.env_steps) for o in outs])
    mean, stderr = pool_chunks(means, stderrs, chunk)
    n_chunks = 2 ** np.arange(len(mean))
    return Running(n=n_chunks * chunk, env_steps=steps[n_chunks - 1], mean=mean, stderr=stderr,
                   z=z_scores(mean, stderr, flatten(problem.exact)))


def csv_rows(problem: Problem, label: str, running: Running) -> list[dict[str, Any]]:
    """The CSV rows of ``running``: one per sample size n and gradient element."""
    exact = flatten(problem.exact)
    return [dict(problem=problem.name, estimator=label, n=int(n), env_steps=int(steps), element=name,
                 estimate=float(running.mean[k, i]), stderr=float(running.stderr[k, i]),
                 exact=float(exact[i]), z=float(running.z[k, i]))
            for k, (n, steps) in enumerate(zip(running.n, running.env_steps))
            for i, name in enumerate(element_names(problem.exact))]
