"""What a run's trajectories say beyond pass@1: answers cut at their token budget, plans whose
program repeats one the run had already tested (the two ways a small model wastes calls), and whether
sample-passing code came from a plan's first program or from debugging it.

    stats = trajectory_stats("runs/mbpp-mapcoder", records)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mapcoder_lite.evals.rundir import RunDir
from mapcoder_lite.nodes.testing import normalized


@dataclass
class TrajectoryStats:
    calls: int = 0
    calls_at_budget: int = 0  # answers that ran to their max_tokens
    completion_tokens: int = 0
    tokens_at_budget: int = 0  # the completion tokens of those answers
    plans_coded: int = 0
    # Coded plans whose coder first wrote a program the run had already tested (the direct attempt's or
    # an earlier plan's), and those still repeating one after Context.plan_diversity asked again.
    plans_repeated: int = 0
    plans_still_repeated: int = 0
    plans_dropped: int = 0  # copies of a higher-ranked plan, never coded (Context.plan_diversity)
    # Runs whose plans reached sample-passing code: with a plan's first program, or after debugging it
    # (how much the debugging rounds, t, buy).
    passed_first: int = 0
    passed_debugged: int = 0


def at_budget(call: Mapping[str, Any], max_tokens: int | None) -> bool:
    """Whether the answer was cut at its budget: the server's finish reason where the call recorded it,
    else (runs from before it was recorded) a completion of max_tokens tokens or more."""
    if "finish_reason" in call:
        return call["finish_reason"] == "length"
    return max_tokens is not None and int(call.get("completion_tokens") or 0) >= max_tokens


def repeats(record: Mapping[str, Any]) -> tuple[int, int, int]:
    """(coded plans, of which the coder first repeated a tested program, of which still after a second
    try). A run with plan_diversity flags its plans; one without is judged by its tested programs."""
    tested = [normalized((record.get("direct") or {}).get("code", ""))] if record.get("direct") else []
    coded = repeated = still = 0
    for plan in record.get("plans") or []:
        attempts = plan.get("attempts") or []
        if not attempts:
            continue
        coded += 1
        program = normalized(attempts[0].get("code", ""))
        if "repeated" in plan:
            repeated += 1
            still += bool(plan.get("still_repeated"))
        elif program and program in tested:
            repeated += 1
            still += 1
        tested += [normalized(a.get("code", "")) for a in attempts]
    return coded, repeated, still


def first_passing_round(record: Mapping[str, Any]) -> int | None:
    """The debugging round of the first attempt of the run's plans that passed every sample (0: a plan's
    first program); None when none did."""
    for plan in record.get("plans") or []:
        for attempt in plan.get("attempts") or []:
            if attempt.get("total") and attempt.get("samples_passed") == attempt.get("total"):
                return int(attempt.get("debug_round") or 0)
    return None


def trajectory_stats(run_dir: str | Path, records: Iterable[Mapping[str, Any]],
                     max_tokens: int | None) -> TrajectoryStats:
    """The numbers over `records` (results.jsonl lines) and the trajectory files they name."""
    stats = TrajectoryStats()
    run = RunDir(run_dir)
    for record in records:
        coded, repeated, still = repeats(record)
        stats.plans_coded += coded
        stats.plans_repeated += repeated
        stats.plans_still_repeated += still
        stats.plans_dropped += sum(int(plan.get("copies") or 0) for plan in record.get("plans") or [])
        found = first_passing_round(record)
        stats.passed_first += found == 0
        stats.passed_debugged += found is not None and found > 0
        saved = run.read_trajectory(record)
        if saved is None:
            continue
        for call in saved.get("trajectory") or []:
            tokens = int(call.get("completion_tokens") or 0)
            stats.calls += 1
            stats.completion_tokens += tokens
            if at_budget(call, max_tokens):
                stats.calls_at_budget += 1
                stats.tokens_at_budget += tokens
    return stats
