"""The compile options of weakpg's programs: the CPU's, and XLA's defaults elsewhere."""

from __future__ import annotations

from unittest import mock

import jax
import numpy as np

import weakpg
from weakpg._src import compiler_options
from weakpg._src.compiler_options import CPU_COMPILER_OPTIONS, CPU_ESTIMATOR_OPTIONS, for_backend
from weakpg.envs import LinearQuadratic


def test_the_cpu_options_on_the_cpu_and_xla_defaults_elsewhere(monkeypatch):
    assert jax.default_backend() == "cpu"
    assert for_backend(CPU_COMPILER_OPTIONS) == CPU_COMPILER_OPTIONS
    monkeypatch.setattr(compiler_options.jax, "default_backend", lambda: "gpu")
    assert for_backend(CPU_COMPILER_OPTIONS) is None


def test_the_driver_options_are_the_estimator_s_without_the_fusion_emitters():
    assert CPU_COMPILER_OPTIONS == {**CPU_ESTIMATOR_OPTIONS, "xla_cpu_use_fusion_emitters": False}
    assert CPU_ESTIMATOR_OPTIONS == {"xla_backend_optimization_level": 1}


def test_estimate_gradient_compiles_with_the_estimator_options():
    env = LinearQuadratic(A=[[0.8]], B=[[1.0]], Q=[[1.0]], R=[[0.5]],
                          noise_cov=[[0.1]], init_cov=[[1.0]])  # no other test's: compiled here
    policy = weakpg.LinearGaussian(env, sigma=0.5)
    params = {"weights": np.zeros((1, 1), np.float32)}
    with mock.patch.object(jax, "jit", wraps=jax.jit) as jit:
        first = weakpg.estimate_gradient(jax.random.key(0), env, policy, params, estimator="jd",
                                         gamma=0.9, num_samples=64)
    assert [call.kwargs.get("compiler_options") for call in jit.call_args_list] == [CPU_ESTIMATOR_OPTIONS]
    again = weakpg.estimate_gradient(jax.random.key(0), env, policy, params, estimator="jd",
                                     gamma=0.9, num_samples=64)
    np.testing.assert_array_equal(first.mean["weights"], again.mean["weights"])
