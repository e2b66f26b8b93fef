"""The benchmarks of PRODUCT.md section 9 (``manage.py bench``), listed here in the order they run.

Each module holds one measurement (``BENCHMARK``, or a list for the experiment
statistics); :mod:`devtools.benchmarks.base` holds what they share: options, results,
checks, the server under test and the report.
"""

from __future__ import annotations

from devtools.benchmarks import (
    conversion,
    dashboard,
    decision,
    experiments,
    idle_sessions,
    ingestion,
    monitor,
    sdk,
)
from devtools.benchmarks.base import Benchmark

BENCHMARKS: dict[str, Benchmark] = {
    benchmark.name: benchmark
    for benchmark in [
        ingestion.BENCHMARK,
        *experiments.benchmarks(),
        conversion.BENCHMARK,
        dashboard.BENCHMARK,
        decision.BENCHMARK,
        monitor.BENCHMARK,
        idle_sessions.BENCHMARK,
        sdk.BENCHMARK,
    ]
}
