"""Argument checks: each names the argument, the bad value and what is allowed; tracers pass."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg._src import validation


@pytest.mark.parametrize("value, kwargs, message", [
    (0.0, {"low": 0.0, "low_open": True}, r"sigma must lie in \(0.0, inf\), got 0.0"),
    (1.5, {"low": 0.0, "high": 1.0}, r"sigma must lie in \[0.0, 1.0\], got 1.5"),
    (float("nan"), {}, "sigma must be finite, got nan"),
    ([1.0, -2.0, 3.0], {"low": 0.0}, r"element-wise, got \[ 1. -2.  3.\] \(bad entries: -2.0\)"),
])
def test_check_array_names_the_value_and_the_interval(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        validation.check_array("sigma", value, **kwargs)


def test_check_array_accepts_good_values_and_skips_tracers():
    validation.check_array("sigma", [0.5, 1.0], low=0.0, high=1.0, low_open=True)
    jax.jit(lambda x: validation.check_array("x", x, low=0.0) or x)(jnp.array(-1.0))  # traced: skipped
    assert validation.is_concrete(np.ones(2)) and not validation.is_concrete(object())


@pytest.mark.parametrize("value", [0, -3, 2.0, True, "4", None])
def test_check_positive_int_refuses_all_but_ints_from_one(value):
    with pytest.raises(ValueError, match=f"num_samples must be a Python int >= 1, got {value!r}"):
        validation.check_num_samples(value)
    assert validation.check_positive_int("n", np.int64(3)) == 3


def test_first_non_finite_names_the_leaf():
    tree = {"a": jnp.ones(2), "b": {"c": jnp.array([1.0, jnp.inf])}}
    assert validation.first_non_finite(tree) == "['b']['c']"
    assert validation.first_non_finite({"a": jnp.ones(2)}) is None


def test_shape_and_choice_checks():
    with pytest.raises(ValueError, match=r"A must have shape \(2, 2\), got shape \(3,\)"):
        validation.check_shape("A", np.zeros(3), (2, 2))
    with pytest.raises(ValueError, match=r"a and b must have the same shape, got a.shape=\(2,\)"):
        validation.check_same_shape("a", np.zeros(2), "b", np.zeros(3))
    with pytest.raises(ValueError, match="estimator must be one of 'jd', 'sf', got 'pg'"):
        validation.check_choice("estimator", "pg", ("jd", "sf"))
