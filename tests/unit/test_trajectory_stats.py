"""Trajectory numbers of the report: answers cut at their budget, plans repeating a tested program, and
where sample-passing code came from."""

from __future__ import annotations

import json
from pathlib import Path

from mapcoder_lite.evals.trajectories import at_budget, first_passing_round, repeats, trajectory_stats

A, B = "def f():\n    return 1\n", "def f():\n    return 2"


def test_an_answer_is_cut_at_its_budget_by_the_servers_word_else_by_its_length() -> None:
    assert at_budget({"finish_reason": "length", "completion_tokens": 10}, 1536)
    assert not at_budget({"finish_reason": "stop", "completion_tokens": 1536}, 1536)
    assert at_budget({"completion_tokens": 1536}, 1536) and not at_budget({"completion_tokens": 1535}, 1536)
    assert not at_budget({"completion_tokens": 9999}, None)


def test_repeats_count_programs_tested_before_under_the_direct_attempt_or_an_earlier_plan() -> None:
    paper = {"plans": [{"attempts": [{"code": A}, {"code": B}]}, {"attempts": [{"code": B + "\n\n"}]},
                       {"attempts": []}]}
    assert repeats(paper) == (2, 1, 1)  # the second plan's program is the first plan's fix
    direct_first = {"direct": {"code": A}, "plans": [{"attempts": [{"code": A}]}]}
    assert repeats(direct_first) == (1, 1, 1)
    # With plan_diversity the plan says what its coder first wrote; the attempt is the second try.
    diverse = {"direct": {"code": A}, "plans": [{"repeated": True, "still_repeated": False, "attempts": [{"code": B}]}]}
    assert repeats(diverse) == (1, 1, 0)


def test_stats_read_each_records_trajectory_file(tmp_path: Path) -> None:
    calls = [{"role": "retriever", "completion_tokens": 100, "finish_reason": "length"},
             {"role": "coder", "completion_tokens": 50, "finish_reason": "stop"}]
    (tmp_path / "trajectories").mkdir()
    (tmp_path / "trajectories" / "p1.json").write_text(json.dumps({"trajectory": calls}))
    records = [{"id": "p1", "plans": [], "trajectory_file": "trajectories/p1.json"},
               {"id": "p2", "plans": [{"copies": 2, "attempts": [{"code": A}]}]}]
    stats = trajectory_stats(tmp_path, records, max_tokens=1536)
    assert (stats.plans_coded, stats.plans_dropped) == (1, 2)
    assert (stats.calls, stats.calls_at_budget, stats.completion_tokens, stats.tokens_at_budget) == (2, 1, 150, 100)


def test_passing_code_is_counted_as_a_plans_first_program_or_a_debugged_one(tmp_path: Path) -> None:
    def attempt(passed: int, round_: int) -> dict:
        return {"code": A, "samples_passed": passed, "total": 2, "debug_round": round_}

    records = [
        {"id": "T/0", "plans": [{"attempts": [attempt(0, 0), attempt(1, 1)]}, {"attempts": [attempt(2, 0)]}]},
        {"id": "T/1", "plans": [{"attempts": [attempt(0, 0), attempt(2, 1)]}]},
        {"id": "T/2", "plans": [{"attempts": [attempt(1, 0)]}]},  # never all samples
        {"id": "T/3", "plans": []},  # the direct answer passed: no plan ran
    ]
    assert [first_passing_round(r) for r in records] == [0, 1, None, None]
    stats = trajectory_stats(tmp_path, records, max_tokens=None)
    assert (stats.passed_first, stats.passed_debugged) == (1, 1)
