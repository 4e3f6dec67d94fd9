"""Evaluation on code benchmarks: datasets, strategies, hidden-test scoring, a resumable runner, reports.

    import asyncio
    from mapcoder_lite.evals import evaluate, report
    from mapcoder_lite.graph import Context

    summary = asyncio.run(evaluate("humaneval", strategy="mapcoder", context=Context.lite(), out_dir="runs/he"))
    table, chart = report(["runs/he"], chart="he.png")

The same from the command line: `mapcoder-lite eval --dataset humaneval ...` and `mapcoder-lite report`.
"""

from mapcoder_lite.evals.datasets import DATASETS, DatasetError, Problem, dataset_spec, load_problems
from mapcoder_lite.evals.errors import EvalError
from mapcoder_lite.evals.report import RunStats, load_run, markdown_table, report, write_chart
from mapcoder_lite.evals.rundir import RunSettings, SettingsMismatch, read_results
from mapcoder_lite.evals.runner import EndpointDown, Runner, RunSummary, evaluate
from mapcoder_lite.evals.scoring import Score, score, scoring_limits
from mapcoder_lite.evals.strategies import STRATEGIES, Attempt, Strategy, make_strategy

__all__ = [
    "DATASETS",
    "STRATEGIES",
    "Attempt",
    "DatasetError",
    "EndpointDown",
    "EvalError",
    "Problem",
    "RunSettings",
    "RunStats",
    "RunSummary",
    "Runner",
    "Score",
    "SettingsMismatch",
    "Strategy",
    "dataset_spec",
    "evaluate",
    "load_problems",
    "load_run",
    "make_strategy",
    "markdown_table",
    "read_results",
    "report",
    "score",
    "scoring_limits",
    "write_chart",
]
