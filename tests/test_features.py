"""Feature maps: each against its formula written out, and the fast paths against the plain ones."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from weakpg.features import RBF, Fourier, Identity

OBS = jnp.array([0.3, -0.7, 2.5])


def _rbf_by_formula(centers: np.ndarray, width: np.ndarray, obs: np.ndarray) -> np.ndarray:
    z = (obs[None, :] - centers) / width
    return np.append(np.exp(-0.5 * np.sum(z**2, axis=1)), 1.0)


def test_identity_is_the_flattened_observation():
    phi = Identity((2, 2))
    np.testing.assert_array_equal(phi(jnp.arange(4.0).reshape(2, 2)), [0.0, 1.0, 2.0, 3.0])
    assert phi.dim == 4


@pytest.mark.parametrize("num", [(3, 3, 3), (5, 5, 5), (1, 4, 2)])
def test_an_rbf_grid_is_the_gaussians_of_its_centres(num):
    low, high = np.array([-1.0, -1.0, -8.0]), np.array([1.0, 1.0, 8.0])
    phi = RBF.grid(low, high, num)
    axes = [np.linspace(lo, hi, n) if n > 1 else np.array([(lo + hi) / 2])
            for lo, hi, n in zip(low, high, num)]
    width = np.array([(hi - lo) / max(n - 1, 1) for lo, hi, n in zip(low, high, num)])
    centers = np.array(list(itertools.product(*axes)))
    expected = _rbf_by_formula(centers, width, np.asarray(OBS, np.float64))
    assert phi.dim == int(np.prod(num)) + 1
    np.testing.assert_allclose(phi(OBS), expected, rtol=1e-5, atol=1e-7)
    # The tensor-product path (grids) equals the per-centre path (free centres).
    np.testing.assert_allclose(RBF(centers, width)(OBS), expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("num", [(3, 3, 3), (5, 5, 5)])
def test_rbf_linear_is_the_dot_with_the_features(num):
    """The axis-by-axis contraction of large grids is weights @ phi(obs)."""
    phi = RBF.grid(-jnp.ones(3), jnp.ones(3), num)
    weights = jax.random.normal(jax.random.key(0), (2, phi.dim))
    np.testing.assert_allclose(phi.linear(weights, OBS), weights @ phi(OBS), rtol=1e-5, atol=1e-6)


def test_fourier_features_are_cosines_of_random_projections():
    phi = Fourier.random(jax.random.key(1), obs_dim=3, num_features=16, bandwidth=2.0)
    expected = np.append(np.cos(np.asarray(phi.frequencies) @ np.asarray(OBS) + np.asarray(phi.phases)), 1.0)
    np.testing.assert_allclose(phi(OBS), expected, rtol=1e-5, atol=1e-6)
    assert phi.dim == 17
    # Frequencies ~ N(0, 1 / bandwidth^2): 4096 draws give the scale to within a few percent.
    many = Fourier.random(jax.random.key(2), obs_dim=1, num_features=4096, bandwidth=2.0)
    assert abs(float(jnp.std(many.frequencies)) - 0.5) < 0.03


@pytest.mark.parametrize("make, message", [
    (lambda: RBF(np.zeros(3), 1.0), "centers must have shape"),
    (lambda: RBF(np.zeros((2, 3)), 0.0), "width"),
    (lambda: RBF.grid(np.zeros(2), np.ones(2), (3, 3, 3)), "one box"),
    (lambda: RBF.grid(np.zeros(2), np.ones(2), (3, 0)), "num must be >= 1"),
    (lambda: Fourier(np.zeros((4, 2)), np.zeros(3)), "frequencies must have shape"),
    (lambda: Fourier.random(jax.random.key(0), 2, 0), "num_features"),
])
def test_bad_feature_arguments_are_refused(make, message):
    with pytest.raises(ValueError, match=message):
        make()
