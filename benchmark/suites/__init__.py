"""Paper tables as one command each: `python cli.py suite NAME` (`benchmark.suites.base.run_suite`).

The machinery is `base`; each paper's suites are a module of their own (`instancewise`: seeds 000 / 001; `unsir`: seed 002; `fisher_masking`: seed 003; `few_shot`: seed 004; `peers`: the field's baselines), imported
here so that they register, as timm's model modules do.
"""

from benchmark.suites import few_shot, fisher_masking, instancewise, peers, unsir  # noqa: F401  (registers their suites)
from benchmark.suites.analyses import ANALYSIS_METRICS, analysis_measures, analyze_suite
from benchmark.suites.base import (
    MIA_SAMPLES,
    SUITES,
    Row,
    Suite,
    original,
    row_run,
    run_continual,
    run_row,
    run_seconds,
    run_suite,
    suite_dir,
    tables,
    track_stream,
    write_entries,
)

__all__ = ["ANALYSIS_METRICS", "MIA_SAMPLES", "analysis_measures", "analyze_suite", "SUITES", "Row", "Suite", "original", "run_continual", "row_run", "run_row", "run_seconds", "run_suite", "suite_dir", "tables",
           "track_stream", "write_entries"]
