"""What a study returns: the paper's claims next to our measurements.

A study runs one experiment on problems whose truth is known (or estimated far more
precisely than what it is compared with), writes its CSV tables and PNG figures into a
folder and returns a ``StudyResult``: its findings, one per claim, and a markdown
section that explains the numbers. ``weakpg.studies`` writes that section next to the
files and gathers every study's findings into ``report.md``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

VERDICTS = ("holds", "does not hold", "mixed")

# XLA options of the studies' compiled functions. The multi-threaded Eigen pool on the CPU
# can wedge while the result of a large vmapped loop is awaited (a full convergence run
# hung with every thread parked); single-threaded Eigen avoids it at no measurable cost.
SINGLE_THREADED_EIGEN = {"xla_cpu_multi_thread_eigen": False}
# Compiling dominates a quick run. LLVM at -O0 without XLA's fusion emitters compiles
# about 4.5x as fast (a PG-JD estimate of 8192 samples on the 4-d LQR: 0.96 s against
# 4.5 s), and the slower code costs a few seconds on a quick run's small budgets.
QUICK_COMPILER_OPTIONS = {**SINGLE_THREADED_EIGEN, "xla_backend_optimization_level": 0,
                          "xla_cpu_use_fusion_emitters": False}


@dataclasses.dataclass(frozen=True)
class Finding:
    """One claim of the paper (or of the first seed) and what we measured.

    Attributes:
      claim: the claim and where it is made ("Theorem 3: the PG-JD estimate is unbiased").
      measurement: what we measured, with numbers ("max |z| 2.1 over 24 cases, 4 allowed").
      verdict: "holds", "does not hold", or "mixed" (holds on some problems, not all).
    """

    claim: str
    measurement: str
    verdict: str

    def __post_init__(self):
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


@dataclasses.dataclass(frozen=True)
class StudyResult:
    """What a study returns after writing its files.

    Attributes:
      name: the study's command name ("unbiased").
      title: a one-line title.
      findings: the claims it tests, with verdicts.
      markdown: the body of its report section (no top heading): setup, tables, notes.
      files: names of the files it wrote into its folder (CSV and PNG).
    """

    name: str
    title: str
    findings: tuple[Finding, ...]
    markdown: str
    files: tuple[str, ...]


class Study(Protocol):
    """A study: ``run(out_dir, quick=, seed=, progress=)`` writes files, returns the result."""

    def __call__(self, out_dir: Path, *, quick: bool, seed: int,
                 progress: Callable[[str], None]) -> StudyResult: ...


def verdict(passed: Sequence[bool]) -> str:
    """A claim tested case by case: "holds" if it passed in every case, "does not hold" in
    none, else "mixed"."""
    return "holds" if all(passed) else "mixed" if any(passed) else "does not hold"


def markdown_table(header: tuple[str, ...], rows: list[tuple[object, ...]],
                   align: str | None = None) -> str:
    """A GitHub markdown table; ``align`` has one "l" or "r" per column (default: l then r).

    A "|" inside a cell (|s|, |z|) is escaped, so it does not split the cell.
    """
    align = align or "l" + "r" * (len(header) - 1)
    rule = "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"
    line = lambda cells: "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"  # noqa: E731
    return "\n".join([line(header), rule] + [line(row) for row in rows])


def findings_table(findings: tuple[Finding, ...] | list[Finding]) -> str:
    """The claims-versus-measurements table of a section or of the report."""
    return markdown_table(("Claim", "Measured", "Verdict"),
                          [(f.claim, f.measurement, f.verdict) for f in findings], align="lll")
