"""A sweep file and its plan: the runs of a grid of ``weakpg train`` settings.

A sweep is a TOML file of ``weakpg train`` settings, the fields of ``settings.RunConfig``,
and an optional ``[grid]`` table mapping settings to lists of values. Every point of the
grid (the cartesian product of its lists) is trained from seeds 0..seeds-1::

    env = "Pendulum-v1"
    batch_size = 256
    env_steps = 200_000
    gamma = 0.95

    [grid]
    estimator = ["jd", "sf"]
    lr = [0.05, 0.1]

``weakpg sweep sweep.toml --seeds 3`` runs these 2 x 2 x 3 = 12 runs. TOML has no null:
"none" stands for None in the settings whose default is None (baseline, iterations,
env_steps, max_grad_norm). Without ``--seeds`` each grid point runs once, with the seed
the file gives (``seed = 7``, or a list in ``[grid]``; 0 when it gives none); with
``--seeds`` the file must not give one. Everything is checked before any run starts.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from weakpg._src.app import settings
from weakpg._src.config import check_int_range

GRID = "grid"


class Run(NamedTuple):
    """One run of a sweep.

    Attributes:
      name: its folder name under ``runs/``, unique in the sweep.
      settings: the values of the grid's settings at this run (seed excluded).
      setup: the complete flat settings (``settings.to_dict``), checked.
    """

    name: str
    settings: dict[str, Any]
    setup: dict[str, Any]


def load_config(path: str | Path) -> dict[str, Any]:
    """The settings of a sweep file (TOML); ValueError names the file if it cannot be read."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"sweep config {path} cannot be read as TOML: {error}") from None


def _grid(config: Mapping[str, Any]) -> dict[str, list[Any]]:
    grid = config.get(GRID, {})
    if not isinstance(grid, Mapping):
        raise ValueError(f"[{GRID}] must be a table of setting = [values], got {grid!r}")
    checked = {}
    for key, values in grid.items():
        if not isinstance(values, list) or not values:
            raise ValueError(f"[{GRID}] {key} must be a non-empty list of values, got {values!r}")
        if key in config:
            raise ValueError(f"setting {key} is given both alone and in [{GRID}]; give it once")
        if any(v in values[:i] for i, v in enumerate(values)):
            raise ValueError(f"[{GRID}] {key} lists a value twice: {values!r}")
        checked[key] = values
    return checked


def _folder_part(key: str, value: Any) -> str:
    """``key=value`` with anything but letters, digits and ``.=-`` turned into ``-``."""
    return re.sub(r"[^A-Za-z0-9.=-]+", "-", f"{key}={settings.NONE if value is None else value}")


def _checked(point: Mapping[str, Any]) -> dict[str, Any]:
    """The flat settings of a grid point, checked by the schema and against its environment."""
    config = settings.from_dict(point)
    settings.build(config)
    return settings.to_dict(config)


def plan(config: Mapping[str, Any], seeds: int | None = None) -> list[Run]:
    """The runs of a sweep, every setup checked; ValueError before anything runs.

    Args:
      config: settings (fields of ``settings.RunConfig``) and an optional "grid" mapping
        settings to lists of values, as ``load_config`` reads them.
      seeds: train each grid point from seeds 0..seeds-1; the config must not give a
        seed then. None: the config's seed (or each seed of its grid; default 0).

    Returns the runs in grid order (settings in the order of the file), seed fastest.
    """
    if seeds is not None:
        check_int_range("seeds", seeds, 1)
        if "seed" in config or "seed" in config.get(GRID, {}):
            raise ValueError("the config gives a seed and --seeds is given too; give seeds in one place")
    base = {key: value for key, value in config.items() if key != GRID}
    for key, value in base.items():
        if isinstance(value, list):
            raise ValueError(f"setting {key} is a list, {value!r}; to sweep over several values, "
                             f"list them in [{GRID}]")
    grid = _grid(config)
    varying = [key for key in grid if key != "seed"]
    planned, names = [], set()
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        try:
            setup = _checked({**base, **point})
            if seeds is not None:
                _checked({**base, **point, "seed": seeds - 1})
        except ValueError as error:
            where = ", ".join(f"{k}={v!r}" for k, v in point.items())
            raise ValueError(f"grid point {where}: {error}" if point else str(error)) from None
        for seed in range(seeds) if seeds is not None else [setup["seed"]]:
            point_settings = {key: setup[key] for key in varying}
            name = "__".join([*(_folder_part(k, v) for k, v in point_settings.items()), f"seed{seed}"])
            if name in names:
                raise ValueError(f"two runs would share the folder name {name!r}: values of the grid "
                                 "differ only in characters a folder name cannot hold")
            names.add(name)
            planned.append(Run(name, point_settings, {**setup, "seed": seed}))
    return planned


def groups(planned: Sequence[Run]) -> list[list[Run]]:
    """The runs that differ only in their seed, each list one worker's program."""
    by_point: dict[str, list[Run]] = {}
    for run in planned:
        key = repr(sorted((k, v) for k, v in run.setup.items() if k != "seed"))
        by_point.setdefault(key, []).append(run)
    return list(by_point.values())
