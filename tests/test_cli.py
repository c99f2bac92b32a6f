"""The command line: help, version and the demo."""

import re
import signal
import subprocess
import sys
import time

import pytest
from conftest import assert_events_mirror_metrics, metrics_without_wall_clock
from typer.testing import CliRunner

import weakpg
from weakpg._src.app.cli import app
from weakpg._src.app.train_command import run_name

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


@pytest.mark.parametrize("code, absent", [
    ("from weakpg._src.app.cli import app; app(['--help'], standalone_mode=False)", ("jax",)),
    ("import weakpg; weakpg.LinearGaussian, weakpg.train.train",
     ("gymnax", "gymnasium", "matplotlib", "ray", "typer")),
])
def test_start_up_imports_only_what_it_needs(code, absent):
    """``weakpg --help`` does not import JAX; the core does not import the env families."""
    check = f"import sys; {code}; print([m for m in {absent!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"weakpg {weakpg.__version__}"


def test_demo_prints_every_estimator_next_to_the_exact_value():
    result = runner.invoke(app, ["demo", "--samples", "20000", "--seed", "3"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("score function", "loo baseline", "weak derivative, coupled",
                 "weak derivative, uncoupled", "pathwise", "E[z^2]", "Poisson(3)"):
        assert name in result.output
    # Every row's |z| (estimate vs exact, in standard errors) is below 4.
    rows = re.findall(r"^│\s*(mean|scale|rate)\s*│.*│\s*([\d.]+)\s*│\s*[\d.]+\s*│$", result.output, re.M)
    assert len(rows) == 14, result.output
    assert all(float(z) < 4 for _, z in rows)


def test_demo_rejects_too_few_samples():
    result = runner.invoke(app, ["demo", "--samples", "1"])
    assert result.exit_code != 0
    assert "--samples" in result.output


def test_console_script_is_installed():
    out = subprocess.run([sys.executable, "-m", "weakpg", "--version"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"weakpg {weakpg.__version__}"


def _weakpg(*args: str, cwd=None, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "weakpg", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600, **kwargs)


def test_resume_refuses_folders_that_are_not_runs(tmp_path):
    result = runner.invoke(app, ["train", "--resume", str(tmp_path)])
    assert result.exit_code == 2 and "is not a weakpg run folder" in result.output
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text("{not json")
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and "is not valid JSON" in result.output


def test_corrupt_checkpoint_exits_cleanly_and_leaves_files_untouched(tmp_path):
    args = ["train", "--env-steps", "3000", "--batch-size", "32", "--eval-every", "1",
            "--policy", "linear", "--out", str(tmp_path)]
    assert runner.invoke(app, args).exit_code == 0
    (run,) = tmp_path.iterdir()
    (run / "checkpoint.npz").write_bytes(b"garbage")
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    result = runner.invoke(app, ["train", "--resume", str(run)])
    assert result.exit_code == 2 and "cannot be read" in result.output
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


@pytest.mark.parametrize("seeds", [1, 2])
def test_kill_and_resume_gives_the_metrics_of_an_uninterrupted_run(tmp_path, seeds):
    """``kill -9`` and ``--resume``: metrics.csv as an uninterrupted run's; event files that mirror it.

    The suite's one kill-and-resume of ``weakpg train``, TensorBoard's event files included:
    the cut run writes them (``--resume`` keeps writing them), the uninterrupted run, without
    ``--tensorboard``, writes none.
    """
    args = ["train", "--env-steps", "600000", "--batch-size", "128", "--eval-every", "2",
            "--policy", "linear", "--seeds", str(seeds)]
    whole = _weakpg(*args, "--out", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    cut = [sys.executable, "-m", "weakpg", *args, "--tensorboard", "--out", str(tmp_path / "cut")]
    proc = subprocess.Popen(cut, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    found = []
    while time.time() < deadline and proc.poll() is None:
        found = sorted((tmp_path / "cut").glob("*/metrics.csv"))
        if (len(found) == seeds and all(len(f.read_text().splitlines()) >= 4 for f in found)
                and all(list(f.parent.glob("tensorboard/*")) for f in found)):
            break  # header + 3 evaluations and an event file in every seed's folder
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    interrupted = [len(f.read_text().splitlines()) for f in found]
    resumed = _weakpg("train", *[a for f in found for a in ("--resume", str(f.parent))])
    assert resumed.returncode == 0, resumed.stderr
    whole_metrics = sorted((tmp_path / "whole").glob("*/metrics.csv"))
    assert len(whole_metrics) == seeds and not list((tmp_path / "whole").glob("*/tensorboard"))
    for cut, uninterrupted, rows in zip(found, whole_metrics, interrupted):
        assert rows < len(uninterrupted.read_text().splitlines())
        assert metrics_without_wall_clock(cut) == metrics_without_wall_clock(uninterrupted)
        assert_events_mirror_metrics(cut.parent)  # each step once, with metrics.csv's values


def test_plot_draws_runs_and_rejects_non_runs(tmp_path):
    args = ["train", "--env-steps", "3000", "--batch-size", "32", "--eval-every", "1",
            "--policy", "linear", "--out", str(tmp_path / "runs")]
    assert runner.invoke(app, args).exit_code == 0
    sf_args = [*args[:-2], "--estimator", "sf", "--out", str(tmp_path / "runs")]
    assert runner.invoke(app, sf_args).exit_code == 0
    out = tmp_path / "curves.png"
    result = runner.invoke(app, ["plot", *map(str, (tmp_path / "runs").iterdir()), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(app, ["plot", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 2 and "is not a weakpg run folder" in result.output


def test_train_help_names_the_gymnasium_form():
    result = runner.invoke(app, ["train", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "gymnasium:<ID>" in result.output


def test_run_folder_names_are_portable():
    name = run_name("gymnasium:CartPole-v1", "sf", "rollout", 3)
    assert re.fullmatch(r"gymnasium-CartPole-v1__sf-rollout__3__\d{8}-\d{6}", name), name


@pytest.mark.parametrize(
    "args, message",
    [
        (["--seeds", "0"], "seeds must be a Python int >= 1, got 0"),
        (["--env-steps", "0"], "env_steps must be an int in [1, 2147483647], got 0"),
    ],
)
def test_reproduce_rejects_bad_input_with_one_line(tmp_path, args, message):
    result = runner.invoke(app, ["reproduce", "cartpole", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {message}"]
    assert list(tmp_path.iterdir()) == []


def test_sweep_rejects_bad_settings_with_one_line(tmp_path):
    config = tmp_path / "bad.toml"
    config.write_text('gamma = "x"\n')
    result = runner.invoke(app, ["sweep", str(config), "--seeds", "2", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip().startswith("error: ") and "gamma" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "out").exists()
