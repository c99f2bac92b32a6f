"""The Brax learning studies: the comparison at equal env steps and wall-clock, the settings, a quick run.

The quick reacher run (``weakpg reproduce reacher --quick``) compiles four programs, each
tens of seconds on a CPU; it runs once for the module, from JAX's persistent cache when
that holds them.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import sys

import jax
import numpy as np
import pytest
from conftest import fails_cleanly, programs_compiled, read_events
from typer.testing import CliRunner

from weakpg._src import runs
from weakpg._src.app.cli import app
from weakpg._src.app.studies.brax_curves import OUTPUT_FILES, compare, mean_and_halfwidth, value_at
from weakpg._src.app.studies.brax_setups import INVERTED_DOUBLE_PENDULUM, PPO_LABEL, REACHER, PPOSettings

SEEDS = 2
LABELS = ("PG-JD", "PG-JD, k = 1", "PG-SF + rollout baseline", PPO_LABEL)


def _run(points):
    """Rows of one run from (env_steps, wall_seconds, episode_return) triples."""
    return [{"iteration": i, "env_steps": x, "wall_seconds": t, "episode_return": y}
            for i, (x, t, y) in enumerate(points)]


def test_value_at_is_the_last_evaluation_by_then_and_the_initial_policy_before():
    run = _run([(0, 0.5, -10.0), (100, 2.0, -5.0), (200, 4.0, -1.0)])
    assert value_at(run, "wall_seconds", 3.9) == -5.0
    assert value_at(run, "wall_seconds", 4.0) == -1.0
    assert value_at(run, "wall_seconds", 0.1) == -10.0  # before any evaluation: the initial policy
    assert value_at(run, "env_steps", 150) == -5.0


def test_mean_and_halfwidth_is_1_96_standard_errors():
    mean, half = mean_and_halfwidth([1.0, 3.0])
    assert mean == 2.0 and half == pytest.approx(1.96 * math.sqrt(2.0) / math.sqrt(2))
    assert math.isnan(mean_and_halfwidth([4.0])[1])


def test_compare_reads_every_method_at_the_shortest_mean_run_time():
    fast = [_run([(0, 0.0, -10.0), (100, 1.0, -6.0), (200, 2.0, -4.0)]),
            _run([(0, 0.0, -10.0), (100, 1.5, -8.0), (200, 4.0, -2.0)])]  # mean run time 3 s
    slow = [_run([(0, 0.0, -10.0), (100, 2.9, -3.0), (200, 8.0, -1.0)])]  # 8 s
    result = compare({"fast": fast, "slow": slow})
    assert result["seconds"] == 3.0
    e = result["methods"]["fast"]
    assert (e["final"], e["env_steps"], e["wall_seconds"]) == (-3.0, 200, 3.0)
    assert e["at_seconds"] == pytest.approx(np.mean([-4.0, -8.0]))  # seed 2 had not reached 4 s
    assert e["final_band"] == pytest.approx(1.96 * np.std([-4.0, -2.0], ddof=1) / math.sqrt(2))
    assert result["methods"]["slow"]["at_seconds"] == -3.0
    assert result["best_final"] == "slow" and result["best_at_seconds"] == "slow"


def test_ppo_is_brax_s_published_settings_with_num_envs_and_batch_size_scaled():
    published = dataclasses.asdict(REACHER.ppo)
    kwargs = REACHER.ppo.train_kwargs()
    assert kwargs["num_envs"] == 2048 // 32 and kwargs["batch_size"] == 256 // 32
    assert {k: v for k, v in kwargs.items() if k not in ("num_envs", "batch_size")} == {
        k: v for k, v in published.items()
        if k not in ("num_envs", "batch_size", "scale", "published_env_steps")}
    assert REACHER.ppo.env_steps_per_update() == 8 * 32 * 50 * 4
    assert INVERTED_DOUBLE_PENDULUM.ppo.env_steps_per_update() == 64 * 32 * 5 * 1
    with pytest.raises(ValueError, match="PPO num_envs 2048 must be divisible by scale 3"):
        PPOSettings(**{**published, "scale": 3})


@pytest.mark.parametrize("study, budget, evaluations, num_evals, spent", [
    (REACHER, 3_000_000, 20, 21, 60 * 51_200),  # 59 updates are needed; 20 epochs of 3 spend 60
    (REACHER, 100_000, 3, 3, 2 * 51_200),
    (INVERTED_DOUBLE_PENDULUM, 2_000_000, 20, 29, 196 * 10_240),  # 196 = 28 epochs of 7, exactly
])
def test_ppo_evaluations_spend_the_budget_to_within_one_update(study, budget, evaluations, num_evals, spent):
    assert study.ppo.num_evals(budget, evaluations) == num_evals
    assert study.ppo.spent_env_steps(budget, evaluations) == spent
    per_update = study.ppo.env_steps_per_update()
    assert budget <= spent < budget + 2 * per_update
    epochs = num_evals - 1  # what Brax's train spends: epochs of ceil(budget / (epochs * per_update))
    assert epochs * math.ceil(budget / (epochs * per_update)) * per_update == spent


def test_methods_and_evaluation_spacing():
    assert [m.label for m in REACHER.methods()] == list(LABELS[:3])
    assert [m.coordinates for m in REACHER.methods()] == [None, 1, None]
    assert [m.label for m in INVERTED_DOUBLE_PENDULUM.methods()] == ["PG-JD", "PG-SF + rollout baseline"]
    jd, jd1, sf = REACHER.methods()
    # (gamma + branches) / (1 - gamma): PG-JD on d = 2 runs 4 branches, k = 1 and PG-SF two.
    assert REACHER.steps_per_sample(jd, 2) == pytest.approx(4.95 / 0.05)
    assert REACHER.steps_per_sample(jd1, 2) == REACHER.steps_per_sample(sf, 2) == pytest.approx(2.95 / 0.05)
    # 3M env steps in 20 evaluations of 128-sample iterations of 99 steps a sample.
    assert REACHER.eval_every(jd, 2, quick=False) == round(3_000_000 / (20 * 128 * 99))


@pytest.mark.parametrize("change, match", [
    ({"hidden": ()}, "hidden must be positive layer widths"),
    ({"hidden": (64, 0)}, "hidden must be positive layer widths"),
    ({"env_steps": 0}, "env_steps"),
    ({"evaluations": 0}, "evaluations"),
    ({"coordinates": 0}, "coordinates"),
    ({"lr": -1.0}, "lr"),
    ({"gamma": 1.0}, "gamma"),
])
def test_bad_study_settings_are_refused(change, match):
    with pytest.raises(ValueError, match=match):
        dataclasses.replace(REACHER, **change)


@pytest.mark.long
def test_quick_reacher_study_end_to_end(tmp_path):
    """``weakpg reproduce reacher --quick``, checked by each ``_check_*`` below.

    One test, so that one worker compiles the study's programs (a module-scoped fixture
    shared by several tests ran once per xdist worker).
    """
    out = tmp_path / "quick"
    with programs_compiled() as compiled:  # the programs compiled (or loaded) while the study runs
        result = CliRunner().invoke(app, ["reproduce", "reacher", "--quick", "--seeds", str(SEEDS),
                                          "--tensorboard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    # PPO's evaluation: one program a run (an untimed one, then the seeds'), not two.
    assert compiled.count("jit(generate_eval_unroll)") == SEEDS + 1
    # One training program per weakpg method, compiled before its timed runs.
    assert compiled.count("jit(chunk)") == len(REACHER.methods())
    for check in (_check_files_and_summary, _check_equal_budgets, _check_env_steps_per_sample,
                  _check_curves_csv, _check_event_files, _check_rerun_refused, _check_load_and_evaluate):
        check(out, result.output)


def _metrics(run_dir):
    with open(run_dir / runs.METRICS_FILE, newline="") as f:
        return [{k: float(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _check_files_and_summary(out, output):
    """Every run folder, both figures, the table and the summary, which the command printed."""
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    slugs = ("pg-jd", "pg-jd-k1", "pg-sf-rollout", "ppo")
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(
        f"{slug}__seed{seed}" for slug in slugs for seed in range(SEEDS))
    summary = (out / "summary.md").read_text()
    assert summary in output
    for label in LABELS:
        assert f"| {label} | " in summary
    assert "Compiling (s)" in summary and "JAX's persistent compilation cache was on" in summary
    for png in ("curves.png", "curves_wall.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _check_equal_budgets(out, output):
    """Every run spends the quick budget: weakpg to within its last iterations, PPO in whole updates."""
    budget = REACHER.quick_env_steps
    for method in REACHER.methods():
        for seed in range(SEEDS):
            rows = _metrics(out / "runs" / f"{method.slug}__seed{seed}")
            per_iteration = REACHER.batch_size * REACHER.steps_per_sample(method, 2)
            # The run stops after the iteration that spends the budget: within 3 iterations' worth.
            assert budget <= rows[-1]["env_steps"] < budget + 3 * per_iteration
            assert len(rows) >= REACHER.quick_evaluations
    per_update = REACHER.ppo.env_steps_per_update()
    for seed in range(SEEDS):
        rows = _metrics(out / "runs" / f"ppo__seed{seed}")
        # Brax rounds the budget up to whole updates: one per evaluation after the first.
        assert [r["env_steps"] for r in rows] == [i * per_update for i in range(REACHER.quick_evaluations)]
        assert rows[-1]["env_steps"] == REACHER.ppo.spent_env_steps(budget, REACHER.quick_evaluations)
        assert all(np.isfinite(r["episode_return"]) for r in rows)


def _check_env_steps_per_sample(out, output):
    """Mean env steps per gradient sample: (gamma + branches) / (1 - gamma), within 4 standard errors."""
    for method in REACHER.methods():
        per_sample = []
        for seed in range(SEEDS):
            rows = _metrics(out / "runs" / f"{method.slug}__seed{seed}")
            steps, its = np.diff([r["env_steps"] for r in rows]), np.diff([r["iteration"] for r in rows])
            per_sample += list(steps / (its * REACHER.batch_size))
        per_sample = np.asarray(per_sample)
        stderr = per_sample.std(ddof=1) / math.sqrt(len(per_sample))
        expected = REACHER.steps_per_sample(method, 2)
        assert abs(per_sample.mean() - expected) <= 4 * stderr, (method, per_sample.mean(), stderr)


def _check_curves_csv(out, output):
    """curves.csv holds the evaluations of every run folder."""
    with open(out / "curves.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["method"] for r in rows} == set(LABELS)
    for r in rows:
        slug = {m.label: m.slug for m in REACHER.methods()}.get(r["method"], "ppo")
        metrics = _metrics(out / "runs" / f"{slug}__seed{r['seed']}")
        assert float(r["episode_return"]) in [m["episode_return"] for m in metrics]


def _check_event_files(out, output):
    """tensorboard's reader finds each run's returns at its env steps, PPO's runs too."""
    for slug in ("pg-jd", "ppo"):
        run_dir = out / "runs" / f"{slug}__seed1"
        events = read_events(run_dir / "tensorboard")
        metrics = _metrics(run_dir)
        assert [step for step, _ in events["episode_return"]] == [int(r["env_steps"]) for r in metrics]
        np.testing.assert_allclose([v for _, v in events["episode_return"]],
                                   [r["episode_return"] for r in metrics], rtol=1e-6)


def _check_rerun_refused(out, output):
    fails_cleanly(["reproduce", "reacher", "--quick", "--out", str(out)], out.parent, "already holds")


def test_brax_ppo_gets_a_strongly_typed_replicated_state_and_jax_and_brax_are_restored():
    from brax.training import acting

    from weakpg._src.app.studies.brax_ppo import _jax_for_brax

    init = acting.Evaluator.__init__
    with _jax_for_brax():
        eps = jax.numpy.asarray(0.0)
        assert eps.weak_type  # as Brax's initial normaliser holds it
        state = jax.device_put_replicated({"eps": eps, "w": np.ones(3, np.float32)}, jax.local_devices()[:1])
        assert state["eps"].shape == (1,) and state["w"].shape == (1, 3)
        assert not state["eps"].weak_type  # as PPO's training steps return it
        assert state["w"].sharding.mesh.axis_names == ("i",)
        assert acting.Evaluator.__init__ is not init
    assert "device_put_replicated" not in vars(jax) and acting.Evaluator.__init__ is init


def test_without_brax_the_study_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "brax", None)
    fails_cleanly(["reproduce", "double-pendulum", "--quick", "--out", str(tmp_path / "x")], tmp_path,
                  "pip install 'weakpg[brax]'")


def test_a_bad_seed_count_is_refused_before_anything_is_written(tmp_path):
    fails_cleanly(["reproduce", "reacher", "--quick", "--seeds", "0", "--out", str(tmp_path / "x")],
                  tmp_path, "seeds must be")



def _check_load_and_evaluate(out, output):
    """A weakpg run of the study loads with weakpg.load and runs under weakpg evaluate."""
    import weakpg

    run_dir = out / "runs" / "pg-jd-k1__seed1"
    agent = weakpg.load(run_dir)
    assert repr(agent.env) == "BraxEnvironment('reacher', backend='spring')"
    assert agent.config == REACHER and agent.env_steps == _metrics(run_dir)[-1]["env_steps"]
    obs = np.zeros((3, 11), np.float32)
    assert agent.act(obs).shape == (3, 2)
    result = CliRunner().invoke(app, ["evaluate", str(run_dir), "--episodes", "2"])
    assert result.exit_code == 0, result.output
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert len(evaluation["returns"]) == 2 and all(np.isfinite(evaluation["returns"]))
