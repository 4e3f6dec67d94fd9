"""Extraction into per-agent datasets: strict formats, de-duplication, split by problem, confidence labels, stats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.collection.cli import extract_command
from mapcoder_lite.finetune.data import (
    CONFLICTING,
    DISAGREES,
    DUPLICATE,
    HIDDEN_FAILED,
    NO_OUTCOME,
    NOT_FINAL,
    NOT_PASSING_PLAN,
    NOT_STRICT,
    UNBALANCED,
    extract,
    is_strict,
    leaks,
    plan_outcome,
    reference_overlap,
    split_problems,
)
from tests.collection_files import FIX, FIXED_PLAN, FIXING, call, retrieval, write_run
from tests.commands import command_app

CONFIDENCE = "<root>\n<explanation>because</explanation>\n<confidence>{}</confidence>\n</root>"


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def sides(out: Path, role: str) -> dict[str, set[str]]:
    return {side: {m["problem"] for m in read(out / role / f"{side}.meta.jsonl")} for side in ("train", "validation")}


def test_examples_are_strict_unique_and_no_problem_is_on_both_sides(tmp_path: Path) -> None:
    ret = write_run(tmp_path / "ret", "traj_ret", {
        f"P{i}": {"trajectory": [call("retriever", f"problem {i}", retrieval(i))]} for i in range(12)
    } | {"P12": {"trajectory": [call("retriever", "problem 12", "```xml\n" + retrieval(12) + "\n```")]},
         "P13": {"trajectory": [call("retriever", "problem 13", retrieval(13))], "passed": False}})
    # A refused call (prompt longer than the context window) is no candidate: it has no answer.
    refused = call("debugger", "fix 0 again", "", parsed=False, completion_tokens=0, error="prompt too long")
    debug = write_run(tmp_path / "debug", "traj_debug", {
        f"P{i}": {"trajectory": [call("debugger", f"fix {i}", FIXING)] + [refused] * (i == 0), "plans": [FIXED_PLAN]}
        for i in range(12)
    })
    out = tmp_path / "sft"
    stats = extract([ret, debug, ret], out, validation_fraction=0.3, seed=7)  # `ret` twice: all duplicates

    assert set(stats) == {"retriever", "debugger", "confidence"}
    retriever = stats["retriever"]
    assert retriever["candidates"] == 28 and retriever["examples"]["total"] == 12
    assert retriever["dropped"]["reasons"] == {
        DUPLICATE: {"count": 12, "share": round(12 / 28, 4)},
        NOT_STRICT: {"count": 2, "share": round(2 / 28, 4)},
        HIDDEN_FAILED: {"count": 2, "share": round(2 / 28, 4)},
    }
    assert retriever["models"] == {"retriever-model": 12} and retriever["mean_tokens"]["completion"] > 0
    assert stats["debugger"]["examples"]["total"] == stats["debugger"]["candidates"] == 12
    for role in ("retriever", "debugger"):
        split = sides(out, role)
        assert split["train"] and split["validation"] and not split["train"] & split["validation"]
    # One split for every role: a problem is on the same side in the retriever and debugger sets.
    assert not sides(out, "retriever")["train"] & sides(out, "debugger")["validation"]
    assert not sides(out, "retriever")["validation"] & sides(out, "debugger")["train"]
    for role in ("retriever", "debugger"):
        for side in ("train", "validation"):
            for example in read(out / role / f"{side}.jsonl"):
                assert set(example) == {"prompt", "completion"}
                assert [m["role"] for m in example["prompt"]] == ["system", "user"]
                (answer,) = example["completion"]
                assert answer["role"] == "assistant" and is_strict(role, answer["content"], k=1)
    manifest = json.loads((out / "manifest.json").read_text())
    assert not set(manifest["split"]["train"]) & set(manifest["split"]["validation"])
    assert [s["settings"]["track"] for s in manifest["sources"]] == ["traj_ret", "traj_debug", "traj_ret"]
    assert json.loads((out / "retriever" / "stats.json").read_text()) == retriever


def test_confidence_answers_are_kept_only_when_they_agree_with_the_plan_outcome(tmp_path: Path) -> None:
    def scored(plan: str, score: int, strict: bool = True) -> dict[str, Any]:
        answer = f"<confidence>{score}</confidence>" if not strict else \
            f"<root>\n<explanation>because</explanation>\n<confidence>{score}</confidence>\n</root>"
        return call("confidence", f"## Plan (Python 3)\n{plan}\n\nWould this plan work?", answer)

    def plan(text: str, code: str | None, passed: bool = False) -> dict[str, Any]:
        attempts = [{"code": code, "debug_round": 0, "samples_passed": int(passed), "total": 1}] if code else []
        return {"plan": text, "tried": bool(code), "passed": passed, "attempts": attempts}

    run = write_run(tmp_path / "ret", "traj_ret", {
        "P0": {"code": "good()", "plans": [plan("1. PLAN-A", "good()", True), plan("1. PLAN-B", "bad()"),
                                           plan("1. PLAN-C", "worse()"), plan("1. PLAN-D", None),
                                           plan("1. PLAN-E", "good()", True)],
               "trajectory": [scored("1. PLAN-A", 95), scored("1. PLAN-B", 90), scored("1. PLAN-C", 10),
                              scored("1. PLAN-D", 10), scored("1. PLAN-E", 50)]},
        "P1": {"code": "half()", "passed": False, "plans": [plan("1. PLAN-F", "half()", True)],
               "trajectory": [scored("1. PLAN-F", 20), scored("1. PLAN-F", 10, strict=False)]},
    })
    stats = extract([run], tmp_path / "out", validation_fraction=0.0, balance_confidence=False)["confidence"]
    kept = read(tmp_path / "out" / "confidence" / "train.jsonl")
    assert [e["prompt"][1]["content"].split("\n")[1] for e in kept] == ["1. PLAN-A", "1. PLAN-C", "1. PLAN-F"]
    assert stats["dropped"]["reasons"] == {DISAGREES: {"count": 2, "share": 0.2857},
                                           NO_OUTCOME: {"count": 1, "share": 0.1429},
                                           NOT_STRICT: {"count": 1, "share": 0.1429}}
    assert stats["labels"] == {"pass_min": 70, "fail_max": 30, "balanced": False, "passed": 1, "failed": 2}

    # Balanced (the default): one failed plan goes, so each outcome keeps one example.
    stats = extract([run], tmp_path / "balanced", validation_fraction=0.0)["confidence"]
    kept = read(tmp_path / "balanced" / "confidence" / "train.jsonl")
    plans = [e["prompt"][1]["content"].split("\n")[1] for e in kept]
    assert plans[0] == "1. PLAN-A" and plans[1] in ("1. PLAN-C", "1. PLAN-F")
    assert stats["dropped"]["reasons"][UNBALANCED]["count"] == 1
    assert stats["labels"] == {"pass_min": 70, "fail_max": 30, "balanced": True, "passed": 1, "failed": 1}


def test_confidence_of_one_outcome_only_is_balanced_away(tmp_path: Path) -> None:
    # A score that agrees with a passed plan, and no failed plan at all: a set that would teach "always high".
    answer = "<root>\n<explanation>fine</explanation>\n<confidence>90</confidence>\n</root>"
    run = write_run(tmp_path / "ret", "traj_ret", {
        f"P{i}": {"code": "good()", "plans": [{"plan": f"1. PLAN-{i}", "tried": True, "passed": True,
                                               "attempts": [{"code": "good()", "samples_passed": 1, "total": 1}]}],
                  "trajectory": [call("confidence", f"## Plan\n1. PLAN-{i}\n", answer)]} for i in range(3)})
    stats = extract([run], tmp_path / "out")["confidence"]
    assert stats["examples"]["total"] == 0 and stats["labels"]["passed"] == stats["labels"]["failed"] == 0
    assert stats["dropped"]["reasons"] == {UNBALANCED: {"count": 3, "share": 1.0}}


def test_a_plan_labelled_with_both_outcomes_teaches_neither(tmp_path: Path) -> None:
    # One plan sampled in two runs: its program passed once and failed once, each score agrees with its
    # own outcome, and one prompt would be taught both 90 and 10.
    def run(name: str, passed: bool, score: int, plan: str = "1. PLAN-SAME") -> Path:
        code = "good()" if passed else "bad()"
        return write_run(tmp_path / name, "traj_self", {
            "P0": {"code": "good()", "plans": [{"plan": plan, "tried": True, "passed": passed,
                                                "attempts": [{"code": code, "samples_passed": int(passed),
                                                              "total": 1}]}],
                   "trajectory": [call("confidence", f"## Plan\n{plan}\n", CONFIDENCE.format(score))]}})

    runs = [run("a", True, 90), run("b", False, 10), run("c", True, 95, "1. PLAN-OTHER")]
    stats = extract(runs, tmp_path / "out", validation_fraction=0.0, balance_confidence=False)["confidence"]
    assert stats["dropped"]["reasons"] == {CONFLICTING: {"count": 2, "share": 0.6667}}
    kept = read(tmp_path / "out" / "confidence" / "train.jsonl")
    assert [e["prompt"][1]["content"] for e in kept] == ["## Plan\n1. PLAN-OTHER\n"]


def test_plan_outcome_prefers_the_correction_graphs_own_hidden_verdict() -> None:
    assert plan_outcome({"hidden_passed": False, "attempts": [{"code": "x"}]}, "x", True) is False
    assert plan_outcome({"corrected": "planner", "hidden_passed": True}, "x", True) is None
    assert plan_outcome({"tried": True, "passed": False, "attempts": [{"code": "y"}]}, "x", True) is False
    assert plan_outcome({"tried": False, "attempts": []}, "x", True) is None


def test_split_is_stable_as_problems_are_added_and_never_one_sided() -> None:
    problems = [f"toy:P{i}" for i in range(200)]
    first = split_problems(problems[:100], 0.2, seed=1)
    grown = split_problems(problems, 0.2, seed=1)
    assert all(grown[p] == side for p, side in first.items())
    assert 20 <= list(grown.values()).count("validation") <= 60
    assert sorted(split_problems(["a", "b"], 0.1).values()) == ["train", "validation"]
    assert set(split_problems(["a", "b"], 0.0).values()) == {"train"}
    with pytest.raises(ValueError, match="validation_fraction"):
        split_problems(["a"], 1.0)


def test_only_collection_directories_are_read(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"run\.json"):
        extract([tmp_path], tmp_path / "out")
    (tmp_path / "run.json").write_text(json.dumps({"settings": {"strategy": "mapcoder"}}))
    with pytest.raises(ValueError, match="not a collection run"):
        extract([tmp_path], tmp_path / "out")


def test_cli_extract_writes_the_datasets_and_prints_them(tmp_path: Path) -> None:
    run = write_run(tmp_path / "ret", "traj_ret", {
        f"P{i}": {"trajectory": [call("retriever", f"problem {i}", retrieval(i))]} for i in range(3)})
    app = command_app("extract", extract_command)
    result = CliRunner().invoke(app, ["extract", str(run), "--out", str(tmp_path / "sft"),
                                      "--validation-fraction", "0.34"])
    assert result.exit_code == 0, result.output
    assert "retriever" in result.output and (tmp_path / "sft" / "retriever" / "stats.json").is_file()
    assert len(read(tmp_path / "sft" / "retriever" / "train.jsonl")) == 2
    missing = CliRunner().invoke(app, ["extract", str(tmp_path / "nope"), "--out", str(tmp_path / "x")])
    assert missing.exit_code == 2 and "run.json" in missing.output


def test_traj_self_runs_that_pass_train_every_agent_on_the_answers_the_passing_program_rests_on(
        tmp_path: Path) -> None:
    bad = "def f():\n    return 0"

    def run(i: int, coded: str, passed: bool = True, debugged: bool = False, score: int = 90) -> dict[str, Any]:
        plan = f"1. PLAN-{i}"
        attempts = [{"code": coded, "debug_round": 0, "samples_passed": int(coded == FIX), "total": 1}]
        trajectory = [call("retriever", f"problem {i}", retrieval(i)),
                      call("planner", f"problem {i}, example 1", plan),
                      call("planner", f"problem {i}, example 2", f"1. OTHER-{i}"),
                      call("confidence", f"## Plan\n{plan}\n", CONFIDENCE.format(score)),
                      call("confidence", f"## Plan\n1. OTHER-{i}\n", CONFIDENCE.format(50)),
                      call("coder", f"problem {i}: code {plan}", f"```python\n{coded}\n```")]
        if debugged:
            attempts.append({"code": FIX, "debug_round": 1, "samples_passed": 1, "total": 1})
            trajectory.append(call("debugger", f"problem {i}: fix {coded}", FIXING))
        return {"trajectory": trajectory, "passed": passed, "code": FIX if passed or debugged else coded,
                "plans": [{"plan": plan, "tried": True, "passed": passed, "attempts": attempts},
                          {"plan": f"1. OTHER-{i}", "tried": False, "passed": False, "attempts": []}],
                "meta": {"sample_of": f"P{i}", "sample": 1}}  # the samples of one problem, as the runner marks them

    folder = write_run(tmp_path / "self", "traj_self", {
        "P0#1": run(0, FIX),  # the coder's program passes
        "P0#2": run(0, FIX) | {"meta": {"sample_of": "P0", "sample": 2}},  # the same run again: all duplicates
        "P1#1": run(1, bad, debugged=True),  # the debugger's fix passes
        "P2#1": run(2, bad, passed=False, score=10),  # fails the hidden tests: only its confidence, labelled failed
    })

    stats = extract([folder], tmp_path / "out", validation_fraction=0.0)
    examples = {role: read(tmp_path / "out" / role / "train.jsonl") for role in stats}
    problems = {role: sorted(m["problem"] for m in read(tmp_path / "out" / role / "train.meta.jsonl"))
                for role in stats}
    assert problems.pop("confidence")[-1] == "toy:P2"  # and P0's or P1's passed plan (below)
    assert problems == {"retriever": ["toy:P0", "toy:P1"], "planner": ["toy:P0", "toy:P1"], "coder": ["toy:P0"],
                        "debugger": ["toy:P1"]}
    assert [e["completion"][0]["content"] for e in examples["planner"]] == ["1. PLAN-0", "1. PLAN-1"]
    assert examples["debugger"][0]["completion"][0]["content"] == FIXING
    reasons = {role: {r: n["count"] for r, n in s["dropped"]["reasons"].items()} for role, s in stats.items()}
    assert reasons["planner"] == {NOT_PASSING_PLAN: 3, DUPLICATE: 1, HIDDEN_FAILED: 2}
    assert reasons["coder"] == {NOT_FINAL: 1, DUPLICATE: 1, HIDDEN_FAILED: 1}
    # Passed plans scored 90 (P0, P1), the failed one 10 (P2): balanced to one of each.
    assert stats["confidence"]["labels"] | {"pass_min": 0, "fail_max": 0} == {
        "pass_min": 0, "fail_max": 0, "balanced": True, "passed": 1, "failed": 1}
    assert reasons["confidence"][UNBALANCED] == 1 and reasons["confidence"][NO_OUTCOME] == 4
    assert sorted(m["sample"] for m in read(tmp_path / "out" / "retriever" / "train.meta.jsonl")) == [1, 1]


def test_reference_overlap_counts_only_spans_the_prompt_does_not_hold() -> None:
    reference = "def area(w, h):\n    product = w * h\n    return product\n"
    copied = "```python\ndef area(w, h):\n  product = w * h   \n\n  return product\n```"  # spacing differs
    assert reference_overlap(copied, reference, "Write area(w, h).") == {"lines": 3, "chars": 46}
    assert leaks(reference_overlap(copied, reference, "Write area(w, h)."))
    # The prompt shows the whole span (say the plan quotes it): nothing was learned from the reference.
    assert reference_overlap(copied, reference, f"Plan:\n{reference}") == {"lines": 0, "chars": 0}
    own = "```python\ndef area(w, h):\n    return w * h\n```"
    assert reference_overlap(own, reference, "Write area(w, h).") == {"lines": 1, "chars": 15}
    assert not leaks({"lines": 2, "chars": 40})
    # Three lines of boilerplate ("return True", "else:", "return False") are no copy.
    assert not leaks({"lines": 3, "chars": 30}) and leaks({"lines": 3, "chars": 40})
    long_line = ("    return [x for x in items if x % 3 == 0 and x % 5 != 0 and str(x) == str(x)[::-1]"
                 " and x > 10 ** 3 and x < 10 ** 6 and x not in seen_before]")  # one line of 138 characters
    assert leaks(reference_overlap(f"```python\n{long_line}\n```", f"def f(items):\n{long_line}", "f"))
    # The long line is the span reported, not the 2-line span of short lines beside it.
    both = "a = 1\nb = 2\n" + long_line
    assert reference_overlap(f"a = 1\nb = 2\nc = 3\n{long_line}", both, "f") == {"lines": 1, "chars": 138}
