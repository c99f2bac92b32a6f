"""The errors weakpg raises beyond ``ValueError`` for bad arguments (JAX-free)."""

from __future__ import annotations

from typing import Any


class NonFiniteError(FloatingPointError):
    """A quantity of a run became nan or inf; the run stopped at its last finite state.

    Attributes:
      what: what became non-finite, e.g. "the gradient estimate".
      iteration: the iteration at which it happened (the state kept is at this iteration).
      seed: the run's seed, or None outside training.
      state: the last finite ``TrainState`` (None outside training).
      rows: the metrics rows up to it (None outside training).
    """

    def __init__(self, message: str, *, what: str, iteration: int | None = None, seed: int | None = None,
                 state: Any = None, rows: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.what, self.iteration, self.seed, self.state, self.rows = what, iteration, seed, state, rows
