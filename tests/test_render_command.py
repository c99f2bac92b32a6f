"""weakpg render: one episode of gymnasium rgb_array frames as a GIF; its failures."""

import re
import shutil
import sys

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import fails_cleanly
from test_evaluate_command import plain_gymnasium_returns
from typer.testing import CliRunner

import weakpg
from weakpg._src.app.cli import app
from weakpg._src.app.render_command import gif_bytes

runner = CliRunner()
MUJOCO = "gymnasium:InvertedPendulum-v5"  # rendered offscreen (EGL), no display needed


@pytest.fixture(scope="module")
def mujoco_run(trained_run):
    return trained_run(MUJOCO, "linear")


def test_render_writes_the_frames_of_evaluate_s_first_episode(mujoco_run, tmp_path):
    out = tmp_path / "policy.gif"
    result = runner.invoke(app, ["render", str(mujoco_run), "--out", str(out), "--every", "3",
                                 "--width", "64"])
    assert result.exit_code == 0, result.output
    (ret,) = plain_gymnasium_returns(weakpg.load(mujoco_run), "InvertedPendulum-v5", [0])
    kept, steps, said = re.fullmatch(rf"wrote {re.escape(str(out))}: (\d+) frames of a (\d+)-step episode, "
                                     r"return (\S+)", result.output.strip()).groups()
    steps = int(steps)
    assert said == f"{ret:.1f}" and steps - 1 <= ret <= steps  # reward 1 per step, 0 on the fall (v5)
    assert int(kept) == -(-(steps + 1) // 3) + (steps % 3 != 0)  # the reset's frame, every third, the last
    frames = iio.imread(out, index=None)
    assert frames.shape[1:] == (64, 64, 3) and frames.shape[0] == int(kept)
    assert np.ptp(frames.astype(int), axis=0).max() > 50  # the pole moves
    assert iio.immeta(out)["loop"] == 0


def test_gif_bytes_keeps_frames_rate_and_width():
    rng = np.random.default_rng(0)
    frames = [np.full((30, 40, 3), 40 * i, np.uint8) for i in range(5)]
    frames[2][:10] = rng.integers(0, 255, (10, 40, 3), dtype=np.uint8)
    data = gif_bytes(frames, fps=20.0)
    back = iio.imread(data, index=None, extension=".gif")
    assert back.shape == (5, 30, 40, 3)
    np.testing.assert_array_equal(back[4], frames[4])
    assert iio.immeta(data, extension=".gif")["duration"] == 50
    small = iio.imread(gif_bytes(frames, fps=10.0, width=20), index=None, extension=".gif")
    assert small.shape == (5, 15, 20, 3)


def test_render_failures_are_one_line_and_write_nothing(mujoco_run, trained_run, tmp_path, monkeypatch):
    run = tmp_path / "run"
    shutil.copytree(trained_run("Pendulum-v1", "linear"), run)
    out = str(tmp_path / "p.gif")
    fails_cleanly(["render", str(tmp_path / "missing"), "--out", out], tmp_path, "is not a weakpg run folder")
    fails_cleanly(["render", str(run), "--out", str(tmp_path / "p.mp4")], tmp_path,
                  "--out must name a .gif file")
    fails_cleanly(["render", str(run), "--out", out, "--every", "0"], tmp_path,
                  "every must be an int in [1, inf]")
    fails_cleanly(["render", str(run), "--out", out, "--env", "Pendulum-v1"], tmp_path,
                  "rendering needs a gymnasium environment")
    fails_cleanly(["render", str(mujoco_run), "--out", out, "--env", "gymnasium:Pendulum-v1"], tmp_path,
                  "the policy was trained on (4,)")
    monkeypatch.setitem(sys.modules, "pygame", None)  # classic control draws with pygame
    fails_cleanly(["render", str(run), "--out", out], tmp_path, "pip install 'weakpg[render]'")
