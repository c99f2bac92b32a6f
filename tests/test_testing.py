"""The shared statistical helper accepts right answers and rejects wrong ones."""

import numpy as np
import pytest

from weakpg.estimators import GradientEstimate
from weakpg.testing import assert_unbiased, z_scores


def _estimate(mean, stderr):
    return GradientEstimate({"theta": np.asarray(mean)}, {"theta": np.asarray(stderr)})


def test_z_scores():
    z = z_scores({"a": np.array([1.0, 2.0, 3.0])}, {"a": np.array([0.5, 0.0, 0.0])},
                 {"a": np.array([0.0, 2.0, 2.5])})
    np.testing.assert_array_equal(z["a"], [2.0, 0.0, np.inf])


def test_accepts_within_and_rejects_beyond_the_threshold():
    assert_unbiased(_estimate([1.0, -1.0], [0.1, 0.1]), {"theta": np.array([1.39, -0.61])})
    with pytest.raises(AssertionError, match="4.10 standard errors"):
        assert_unbiased(_estimate([1.0, -1.0], [0.1, 0.1]), {"theta": np.array([1.41, -1.0])})
    assert_unbiased(_estimate([1.0], [0.1]), {"theta": np.array([1.25])}, num_stderr=3.0)
    with pytest.raises(AssertionError):
        assert_unbiased(_estimate([1.0], [0.1]), {"theta": np.array([1.35])}, num_stderr=3.0)


@pytest.mark.parametrize("stderr", [np.inf, np.nan])
def test_rejects_unknown_standard_errors(stderr):
    with pytest.raises(AssertionError):
        assert_unbiased(_estimate([1.0], [stderr]), {"theta": np.array([1.0])})


def test_rejects_nan_estimates():
    with pytest.raises(AssertionError):
        assert_unbiased(_estimate([np.nan], [0.1]), {"theta": np.array([1.0])})
