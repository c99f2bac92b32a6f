"""Running studies into a folder: sections, report.md, staging, and the `weakpg study` command."""

from pathlib import Path

import pytest
from conftest import read_table
from typer.testing import CliRunner

from weakpg._src import runs
from weakpg._src.app.cli import app
from weakpg._src.app.studies import report
from weakpg._src.app.studies.base import Finding, StudyResult, findings_table, markdown_table

runner = CliRunner()


def _fake_study(name, verdict="holds", fail=False):
    def run(out_dir: Path, *, quick, seed, progress):
        runs.atomic_write(out_dir / f"{name}.csv", f"seed\n{seed}\n".encode())
        if fail:
            raise RuntimeError(f"{name} broke")
        finding = Finding(f"claim of {name}", f"measured {name} with seed {seed}, quick {quick}", verdict)
        return StudyResult(name, f"Title of {name}", (finding,), f"Body of {name}.\n", (f"{name}.csv",))
    return run


@pytest.fixture
def fake_studies(monkeypatch):
    studies = {"unbiased": _fake_study("unbiased"), "samples": _fake_study("samples", "does not hold")}
    monkeypatch.setattr(report, "_study", lambda name: studies[name])
    return studies


def test_report_puts_every_claim_in_one_table_then_every_section(tmp_path, fake_studies):
    out = tmp_path / "out"
    results = report.run_studies(["unbiased", "samples"], out, quick=True, seed=7)
    assert [r.name for r in results] == ["unbiased", "samples"]
    assert sorted(p.name for p in out.iterdir()) == [
        "report.md", "samples.csv", "samples.md", "unbiased.csv", "unbiased.md"]
    text = (out / "report.md").read_text()
    assert "| claim of unbiased | measured unbiased with seed 7, quick True | holds |" in text
    assert "| claim of samples | measured samples with seed 7, quick True | does not hold |" in text
    assert text.index("## Title of unbiased") < text.index("## Title of samples")
    assert text.index("Body of unbiased.") < text.index("## Title of samples")
    section = (out / "samples.md").read_text()
    assert section.startswith("# Title of samples\n") and "Body of samples." in section


def test_one_study_writes_its_section_but_no_report(tmp_path, fake_studies):
    report.run_studies(["samples"], tmp_path / "one", quick=False, seed=0)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["samples.csv", "samples.md"]


def test_a_failing_study_leaves_no_half_written_folder(tmp_path, monkeypatch):
    studies = {"unbiased": _fake_study("unbiased"), "samples": _fake_study("samples", fail=True)}
    monkeypatch.setattr(report, "_study", lambda name: studies[name])
    with pytest.raises(RuntimeError, match="samples broke"):
        report.run_studies(["unbiased", "samples"], tmp_path / "out", quick=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("names, message", [([], "at least one study"),
                                            (["bogus"], "unknown study 'bogus'"),
                                            (["samples", "samples"], "named twice")])
def test_bad_study_names(tmp_path, names, message):
    with pytest.raises(ValueError, match=message):
        report.run_studies(names, tmp_path / "out", quick=True)


def test_tables_render_as_github_markdown():
    assert markdown_table(("a", "b"), [(1, 2.5)]) == "| a | b |\n|---|---:|\n| 1 | 2.5 |"
    assert markdown_table(("x",), [("max |z| 2",)], align="l").endswith("| max \\|z\\| 2 |")
    with pytest.raises(ValueError, match="verdict must be one of"):
        Finding("c", "m", "probably")
    assert findings_table([Finding("c", "m", "mixed")]).endswith("| c | m | mixed |")


def test_cli_study_all_prints_verdicts_and_writes_the_report(tmp_path, fake_studies, monkeypatch):
    monkeypatch.setattr(report, "STUDIES", {"unbiased": "u", "samples": "s"})
    result = runner.invoke(app, ["study", "all", "--quick", "--seed", "3", "--out", str(tmp_path / "all")])
    assert result.exit_code == 0, result.output
    assert "[holds] claim of unbiased: measured unbiased with seed 3, quick True" in result.output
    assert "[does not hold] claim of samples" in result.output
    assert (tmp_path / "all" / "report.md").is_file()


def test_cli_study_rejects_bad_names_and_used_folders(tmp_path):
    result = runner.invoke(app, ["study", "everything"])
    assert result.exit_code == 2 and "error: study must be one of" in result.output
    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "samples.md").write_text("old")
    result = runner.invoke(app, ["study", "samples", "--quick", "--out", str(tmp_path / "used")])
    assert result.exit_code == 2 and "already holds a previous result" in result.output
    assert (tmp_path / "used" / "samples.md").read_text() == "old"


def test_cli_study_samples_quick_end_to_end(tmp_path):
    result = runner.invoke(app, ["study", "samples", "--quick", "--out", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    assert "[holds] Corollary 6" in result.output
    assert (tmp_path / "s" / "samples.md").read_text().startswith("# Sample complexity")


def test_write_csv_keeps_text_numbers_and_inf(tmp_path):
    runs.write_csv(tmp_path / "t.csv", [{"estimator": "JD coupled", "n": 3, "z": -1.5, "gap": float("inf")}])
    assert read_table(tmp_path / "t.csv") == [{"estimator": "JD coupled", "n": 3, "z": -1.5,
                                              "gap": float("inf")}]


def test_atomic_files_are_readable_like_plain_files(tmp_path):
    runs.atomic_write(tmp_path / "a.txt", b"x")
    (tmp_path / "b.txt").write_bytes(b"x")
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == (tmp_path / "b.txt").stat().st_mode & 0o777
