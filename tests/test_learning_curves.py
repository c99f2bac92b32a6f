"""The learning-curve studies (Pendulum, CartPole) and their plots: curves, bands, files, validation."""

import csv
import dataclasses
import math

import matplotlib.image
import numpy as np
import pytest
from conftest import assert_reproduction_written
from typer.testing import CliRunner

import weakpg
from weakpg._src import runs
from weakpg._src.app.cli import app
from weakpg._src.app.plotting import common_grid, mean_and_band, method_label, plot_curves, plot_runs
from weakpg._src.app.studies import learning_curves
from weakpg._src.app.studies.learning_curves import reproduce
from weakpg._src.app.studies.learning_setups import CARTPOLE, METHODS, PENDULUM
from weakpg._src.driver import METRIC_FIELDS

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _rows(xs, ys):
    """Metrics rows with every column a run folder's metrics.csv holds."""
    return [{**dict.fromkeys(METRIC_FIELDS, 0.0), "iteration": i, "env_steps": x, "episode_return": y,
             "discounted_return": y / 10} for i, (x, y) in enumerate(zip(xs, ys))]


def _assert_png(path):
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_mean_and_band_on_a_known_example():
    # Run 1 is y = x on [0, 10]; run 2 is y = 2 on [0, 5, 10] except y = 4 at 10.
    xs_list = [np.array([0.0, 10.0]), np.array([0.0, 5.0, 10.0])]
    ys_list = [np.array([0.0, 10.0]), np.array([2.0, 2.0, 4.0])]
    grid = np.array([0.0, 5.0, 10.0])
    mean, half = mean_and_band(xs_list, ys_list, grid)
    # At the grid points the runs are (0, 2), (5, 2), (10, 4).
    np.testing.assert_allclose(mean, [1.0, 3.5, 7.0])
    # std(ddof=1) of two values a, b is |a - b| / sqrt(2); the standard error divides by sqrt(2).
    np.testing.assert_allclose(half, 1.96 * np.array([2.0, 3.0, 6.0]) / 2)


def test_single_run_has_no_band():
    mean, half = mean_and_band([np.array([0.0, 1.0])], [np.array([3.0, 5.0])], np.array([0.5]))
    np.testing.assert_allclose(mean, [4.0])
    np.testing.assert_allclose(half, [0.0])


def test_common_grid_is_the_union_clipped_to_the_shortest_run():
    grid = common_grid([np.array([0, 3, 6, 9]), np.array([1, 4, 7])])
    np.testing.assert_array_equal(grid, [1, 3, 4, 6, 7])


def test_method_labels_follow_the_paper():
    assert [m.label for m in METHODS] == ["PG-JD", "PG-SF", "PG-SF + rollout baseline"]
    assert method_label("sf", "value") == "PG-SF + value baseline"


def test_plot_curves_writes_a_png(tmp_path):
    curves = {
        "PG-JD": [_rows([0, 100, 200], [-1000, -800, -500]), _rows([0, 110, 190], [-1100, -700, -450])],
        "PG-SF": [_rows([0, 95, 210], [-1000, -950, -900]), _rows([0, 105, 205], [-1050, -900, -850])],
    }
    path = tmp_path / "curves.png"
    plot_curves(curves, path, title="synthetic")
    _assert_png(path)
    plot_curves(curves, path, y="discounted_return")  # overwrites in place
    _assert_png(path)
    assert [p.name for p in tmp_path.iterdir()] == ["curves.png"]  # no temporary left behind


def test_plot_curves_rejects_an_unknown_column(tmp_path):
    with pytest.raises(ValueError, match="no column"):
        plot_curves({"PG-JD": [_rows([0, 1], [0, 1])]}, tmp_path / "x.png", y="nope")
    assert not (tmp_path / "x.png").exists()


def test_plot_runs_rejects_a_folder_without_config(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        plot_runs([tmp_path], tmp_path / "plot.png")


def test_plot_runs_groups_runs_by_method(tmp_path):
    folders = []
    for estimator, baseline, seed in [("jd", None, 0), ("jd", None, 1), ("sf", "rollout", 0)]:
        folder = tmp_path / f"{estimator}{baseline}{seed}"
        folder.mkdir()
        runs.write_json(folder / runs.CONFIG_FILE, {"estimator": estimator, "baseline": baseline,
                                                    "seed": seed})
        runs.write_csv(folder / runs.METRICS_FILE, _rows([0, 50 + seed, 100], [-900, -700, -600 + seed]))
        folders.append(folder)
    plot_runs(folders, tmp_path / "plot.png")
    _assert_png(tmp_path / "plot.png")


def test_each_study_builds_its_policy_and_checks_its_setup():
    assert learning_curves.STUDIES == {"pendulum": PENDULUM, "cartpole": CARTPOLE}
    pendulum = PENDULUM.make_policy(weakpg.envs.make(PENDULUM.env_id))
    assert isinstance(pendulum, weakpg.LinearGaussian) and pendulum.features.dim == 126
    cartpole = CARTPOLE.make_policy(weakpg.envs.make(CARTPOLE.env_id))
    assert isinstance(cartpole, weakpg.Softmax) and cartpole.features.dim == 4
    assert (PENDULUM.episode_length, CARTPOLE.episode_length) == (200, 500)
    with pytest.raises(ValueError, match="episode_length must be a Python int >= 1, got 0"):
        dataclasses.replace(CARTPOLE, episode_length=0)
    with pytest.raises(ValueError, match="lr_overrides key must be one of 'PG-JD'"):
        dataclasses.replace(CARTPOLE, lr_overrides={"REINFORCE": 0.1})


@pytest.mark.parametrize(
    "runner_up, stderr, sentence",
    [
        (500.0, 0.0, "PG-JD and PG-SF ended level in episode return (500.0)."),
        (480.0, 0.0, "the gap of 20.0 is exact"),  # every seed at the ceiling, or at 480
        (480.0, 5.0, "the gap of 20.0 is 2.8 standard errors, so it exceeds 2 standard errors"),
        (480.0, math.nan, "with one seed there is no standard error"),
    ],
)
def test_the_summary_compares_the_two_best_methods(runner_up, stderr, sentence):
    table = {"PG-JD": {"episode_return": 500.0, "episode_return_stderr": stderr},
             "PG-SF": {"episode_return": runner_up, "episode_return_stderr": stderr},
             "PG-SF + rollout baseline": {"episode_return": 20.0, "episode_return_stderr": stderr}}
    comparison = learning_curves._comparison(table, "episode_return")
    assert (comparison["best"], comparison["runner_up"]) == ("PG-JD", "PG-SF")
    assert sentence in learning_curves._sentence(comparison, "episode return", table, "episode_return")


def test_reproduce_validates_before_writing(tmp_path):
    with pytest.raises(ValueError, match="seeds.*0"):
        reproduce(PENDULUM, tmp_path / "out", quick=True, seeds=0)
    (tmp_path / "out" / "runs").mkdir(parents=True)
    with pytest.raises(ValueError, match="previous result"):
        reproduce(PENDULUM, tmp_path / "out", quick=True, seeds=1)
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_reproduce_pendulum_from_the_command_line(tmp_path, monkeypatch):
    """``weakpg reproduce pendulum --quick`` on a smaller setup: the suite's one Pendulum reproduction."""
    setup = dataclasses.replace(PENDULUM, batch_size=64, quick_env_steps=20_000, eval_every=2,
                                eval_episodes=4)
    monkeypatch.setitem(learning_curves.STUDIES, "pendulum", setup)
    out = tmp_path / "out"
    out.mkdir()  # an empty folder is fine
    result = CliRunner().invoke(app, ["reproduce", "pendulum", "--quick", "--seeds", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output

    assert [line.split(":")[0] for line in result.output.splitlines() if ": episode return " in line] == [
        f"{m.label} seed 0" for m in METHODS]  # one progress line per finished run
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # the staging folder is gone
    _assert_png(out / "curves.png")
    _assert_png(out / "curves_discounted.png")
    with open(out / "curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    assert list(curves[0]) == ["method", "seed", "iteration", "env_steps", "wall_seconds",
                               "discounted_return", "episode_return"]
    for method in METHODS:
        steps = [int(row["env_steps"]) for row in curves if row["method"] == method.label]
        assert steps[0] == 0 and steps[-1] >= 20_000 and steps == sorted(steps)
    for method in METHODS:
        config = runs.open_run(out / "runs" / f"{method.slug}__seed0")
        assert (config["estimator"], config["baseline"], config["seed"]) == (
            method.estimator, method.baseline, 0)
        assert config["setup"]["features"] == "rbf" and config["setup"]["batch_size"] == 64

    text = (out / "summary.md").read_text()
    assert text in result.output
    table = [line for line in text.splitlines() if line.startswith("| PG-")]
    assert [line.split("|")[1].strip() for line in table] == [m.label for m in METHODS]
    for line in table:
        cells = [cell.strip() for cell in line.strip("|").split("|")[1:]]
        numbers = [float(part.replace(",", "")) for cell in cells for part in cell.split("±")]
        assert len(cells) == 4 and all(math.isfinite(x) for x in numbers), line
    assert "ended highest" in text
    assert_reproduction_written(out, "pendulum")  # the files, and a second run into out is refused


def test_a_failed_reproduction_leaves_nothing(tmp_path, monkeypatch):
    def failing_train(env, policy, config, *, run_dirs, **kwargs):
        runs.write_csv(run_dirs[0] / runs.METRICS_FILE, _rows([0], [-1000.0]))
        raise KeyboardInterrupt("stopped mid-run")

    monkeypatch.setattr(learning_curves, "train_seeds", failing_train)
    with pytest.raises(KeyboardInterrupt, match="mid-run"):
        reproduce(PENDULUM, tmp_path / "out", quick=True, seeds=1)
    assert list(tmp_path.iterdir()) == []
