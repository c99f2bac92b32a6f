"""``weakpg render RUN --out policy.gif``: one episode of a trained policy, as a GIF.

The episode is that of ``weakpg evaluate`` with the same seed (gymnasium's, with its time
limit); its frames are gymnasium's ``rgb_array`` renderings (classic control draws them
with pygame, MuJoCo with OpenGL: ``MUJOCO_GL=egl`` when no display is set), every
``every``-th kept, scaled to ``width`` pixels, written with imageio and renamed into place.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import typer

from weakpg._src.app.failures import one_line_errors

RENDER_EXTRA = "pip install 'weakpg[render]'"


def _missing(error: Exception) -> ValueError:
    return ValueError(f"rendering needs a package that is not installed: {RENDER_EXTRA} ({error})")


def episode_frames(agent: Any, env_id: str, *, seed: int = 0, stochastic: bool = False,
                   every: int = 1) -> tuple[list[Any], float, int, float]:
    """The frames of one episode (every ``every``-th, first and last kept), its return and
    steps, and the environment's frame rate."""
    import gymnasium

    from weakpg._src.app import episodes as ep
    from weakpg._src.config import MAX_SEED, check_int_range
    from weakpg._src.envs.registry import GYMNASIUM_PREFIX

    check_int_range("every", every, 1)
    check_int_range("seed", seed, 0, MAX_SEED)
    if not env_id.startswith(GYMNASIUM_PREFIX):
        raise ValueError(f"rendering needs a gymnasium environment ({GYMNASIUM_PREFIX}<ID>), got {env_id!r}, "
                         f"which weakpg runs in JAX: give --env {GYMNASIUM_PREFIX}<ID>")
    if "DISPLAY" not in os.environ:
        os.environ.setdefault("MUJOCO_GL", "egl")  # read when MuJoCo's renderer is first made
    # Classic control draws offscreen with pygame, whose init would open a window system
    # and the sound card, and complain on stderr when there are none.
    os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    os.environ.setdefault("SDL_AUDIODRIVER", "dummy")
    env = ep.make_gymnasium(env_id.removeprefix(GYMNASIUM_PREFIX), render_mode="rgb_array")
    frames: list[Any] = []
    try:
        ep.check_fits(agent, env, env_id)
        total, steps = ep.gymnasium_episode(agent, env, seed, stochastic=stochastic,
                                            on_step=lambda: frames.append(env.render()))
    except gymnasium.error.DependencyNotInstalled as error:
        raise _missing(error) from None
    finally:
        env.close()
    kept = frames[::every] + ([frames[-1]] if (len(frames) - 1) % every else [])
    return kept, total, steps, float(env.metadata.get("render_fps") or 30)


def gif_bytes(frames: list[Any], *, fps: float, width: int | None = None) -> bytes:
    """An endlessly looping GIF of RGB ``frames`` (H, W, 3) uint8, ``fps`` frames a second,
    scaled to ``width`` pixels (aspect kept) when given."""
    try:
        import imageio.v3 as iio
        from PIL import Image
    except ImportError as error:
        raise _missing(error) from None
    import numpy as np

    if width is not None:
        height = max(1, round(frames[0].shape[0] * width / frames[0].shape[1]))
        frames = [np.asarray(Image.fromarray(f).resize((width, height), Image.Resampling.LANCZOS))
                  for f in frames]
    buffer = io.BytesIO()
    iio.imwrite(buffer, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    return buffer.getvalue()


def register(app: typer.Typer) -> None:
    """Add ``weakpg render`` to ``app``."""

    @app.command("render")
    def render_command(
        run: Path = typer.Argument(..., help="A run folder written by weakpg train (or reproduce)."),
        out: Path = typer.Option(Path("policy.gif"), help="The GIF file to write."),
        seed: int = typer.Option(0, help="Seed of the episode's reset (episode 0 of weakpg evaluate)."),
        stochastic: bool = typer.Option(False, "--stochastic", help="Sample actions instead of the mean "
                                        "or most likely one."),
        env: str = typer.Option(None, help="gymnasium:<ID> to render (default: the run's environment, "
                                "on its gymnasium twin)."),
        checkpoint: Path = typer.Option(None, help="Checkpoint file (default: the run's last)."),
        every: int = typer.Option(1, help="Keep every EVERY-th frame (a smaller file; it still plays in "
                                  "real time unless --fps is given)."),
        fps: float = typer.Option(None, help="Frames per second of the GIF (default: the environment's "
                                  "frame rate / EVERY, real time)."),
        width: int = typer.Option(None, help="Scale the frames to WIDTH pixels (default: as rendered)."),
    ) -> None:
        """Render the trained policy acting for one episode into a GIF."""
        with one_line_errors():
            from weakpg._src import runs
            from weakpg._src.app import episodes as ep
            from weakpg._src.app.loading import load, run_env_id
            from weakpg._src.config import check_int_range, check_interval

            if out.suffix.lower() != ".gif":
                raise ValueError(f"--out must name a .gif file, got {out}")
            check_int_range("every", every, 1)
            if fps is not None:
                check_interval("fps", fps, 0.0, 100.0, low_open=True)
            if width is not None:
                check_int_range("width", width, 16, 4096)
            runs.open_run(run)
            runs.check_writable(out.parent)
            agent = load(run, checkpoint)
            frames, total, steps, env_fps = episode_frames(
                agent, ep.episode_env_id(run_env_id(agent.config), env), seed=seed, stochastic=stochastic,
                every=every)
            data = gif_bytes(frames, fps=fps or env_fps / every, width=width)
            out.parent.mkdir(parents=True, exist_ok=True)
            runs.atomic_write(out, data)
        typer.echo(f"wrote {out}: {len(frames)} frames of a {steps}-step episode, return {total:.1f}")
