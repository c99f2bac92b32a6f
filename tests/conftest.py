"""Shared test helpers: the tiny LQR of the training tests and a metrics reader."""

from __future__ import annotations

from pathlib import Path

import pytest

from weakpg.envs import LinearQuadratic

A, B, Q, R, GAMMA = 0.9, 0.5, 1.0, 0.1, 0.9


@pytest.fixture(scope="session")
def lqr() -> LinearQuadratic:
    """A scalar, open-loop stable LQR whose optimum K* is far from K = 0."""
    return LinearQuadratic(A=[[A]], B=[[B]], Q=[[Q]], R=[[R]], noise_cov=[[0.1]], init_cov=[[1.0]])


def metrics_without_wall_clock(path: Path) -> list[list[str]]:
    """A metrics CSV's cells, every column but wall_seconds (the one that may differ)."""
    lines = [line.split(",") for line in Path(path).read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name != "wall_seconds"]
    assert len(lines) > 2 and len(keep) == len(lines[0]) - 1
    return [[cells[i] for i in keep] for cells in lines]
