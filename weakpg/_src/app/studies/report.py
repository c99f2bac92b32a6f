"""Run studies into one folder and gather their findings into ``report.md``.

Every study writes ``<name>.csv``/``<name>*.png`` and ``<name>.md`` (its section); a run of
several studies also writes ``report.md``: the table of the paper's claims against our
measurements, then every section. Everything goes through a staging folder
(``runs.staged_folder``), so an error or an interrupt leaves no half-written report.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from weakpg._src import runs
from weakpg._src.app.studies.base import StudyResult, findings_table

# name -> what it measures; each is the module weakpg._src.app.studies.<name> with run(...).
STUDIES = {
    "unbiased": "Theorem 3 and the baseline argument: every estimator's mean against the exact "
                "gradient",
    "variance": "Theorems 7-8 and Corollary 9: variance of SF, SF with baselines and JD",
    "convergence": "Theorems 4-5: stochastic gradient ascent with diminishing steps on the LQR",
    "samples": "Corollary 6: environment steps per iteration against the geometric prediction",
    "unbounded": "The closing remark: how score-function and weak-derivative samples grow with "
                 "|s|, and learning with unbounded states",
}
REPORT_FILE = "report.md"


def _study(name: str) -> Callable[..., StudyResult]:
    return importlib.import_module(f"weakpg._src.app.studies.{name}").run


def section(result: StudyResult, heading: str = "#") -> str:
    """A study's markdown: its title, its claims-versus-measurements table and its body."""
    return "\n".join([f"{heading} {result.title}", "", findings_table(result.findings), "",
                      result.markdown.strip(), ""])


def report(results: Sequence[StudyResult], *, quick: bool, seed: int, seconds: float) -> str:
    """``report.md``: every finding in one table, then every section."""
    findings = [f for r in results for f in r.findings]
    budget = "quick mode (a smoke run: small samples, wide error bars)" if quick else "full budget"
    lines = [
        "# weakpg studies: the paper's claims, measured",
        "",
        f"{len(results)} studies, {budget}, "
        f"seed {seed}, {seconds:.0f} s. Each row is a claim of the paper (PG-JD) or of the "
        "score-function seed, what we measured, and whether the claim held.",
        "",
        findings_table(findings),
        "",
    ]
    lines += [section(r, heading="##").replace("\n## ", "\n### ") for r in results]
    return "\n".join(lines)


def run_studies(names: Sequence[str], out_dir: str | Path, *, quick: bool, seed: int = 0,
                progress: Callable[[str], None] = lambda line: None) -> list[StudyResult]:
    """Run the named studies into ``out_dir`` (new or empty) and return their results.

    Each writes its files and ``<name>.md``; more than one also gives ``report.md``.
    """
    if not names:
        raise ValueError(f"give at least one study of {sorted(STUDIES)}")
    for name in names:
        if name not in STUDIES:
            raise ValueError(f"unknown study {name!r}; the studies are {', '.join(STUDIES)}")
    if len(set(names)) != len(names):
        raise ValueError(f"a study is named twice in {list(names)}")
    outputs = tuple(f"{name}.md" for name in names) + (REPORT_FILE,)
    studies = {name: _study(name) for name in names}  # import errors surface before minutes of running
    results = []
    started = time.perf_counter()
    with runs.staged_folder(Path(out_dir), outputs) as staging:
        for name in names:
            progress(f"study {name}: {STUDIES[name]}")
            result = studies[name](staging, quick=quick, seed=seed, progress=progress)
            runs.atomic_write(staging / f"{name}.md", section(result).encode())
            results.append(result)
        if len(names) > 1:
            text = report(results, quick=quick, seed=seed, seconds=time.perf_counter() - started)
            runs.atomic_write(staging / REPORT_FILE, text.encode())
    return results
