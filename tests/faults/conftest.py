"""The fault suite's figures, repeated at the end of pytest's output (they are printed as they come too)."""

from __future__ import annotations

from tests.faults.harness import FIGURES


def pytest_terminal_summary(terminalreporter) -> None:
    if FIGURES:
        terminalreporter.section("fault suite figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
