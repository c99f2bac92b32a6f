"""The command line: help, version and the demo."""

import re
import subprocess
import sys

from typer.testing import CliRunner

import weakpg
from weakpg._src.cli import app

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    assert "demo" in result.output


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
