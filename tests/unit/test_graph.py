"""MapCoder semantics of the whole graph, driven by scripted chat models and the real local sandbox."""

from __future__ import annotations

import pytest

from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.graph.context import LEVERS
from tests.graph_answers import BAD, FUNCTION_PROBLEM, GOOD, HALF, by_marker, confidence, retrieval
from tests.scripted import scripted

# The paper's MapCoder: no direct attempt, every plan its t debugging rounds.
PAPER = dict.fromkeys(LEVERS, False)


def run(models: dict, problem: dict = FUNCTION_PROBLEM, **context: object) -> dict:
    return build_graph(chat_models=models).invoke(problem, context=Context(**(PAPER | context)))


def roles(result: dict) -> list[str]:
    return [call["role"] for call in result["trajectory"]]


def test_k_plans_coded_in_confidence_order_with_t_rounds_and_stop_at_first_pass() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA", "EXB", "EXC"),
        planner=by_marker({"EXA example": "PLAN-A", "EXB example": "PLAN-B", "EXC example": "PLAN-C"}),
        confidence=by_marker({"PLAN-A": confidence(40), "PLAN-B": confidence(90), "PLAN-C": confidence(70)}),
        coder=by_marker({"PLAN-B": BAD, "PLAN-C": GOOD, "PLAN-A": GOOD}),
        debugger=lambda p: "1. still wrong\n" + BAD,
    )
    result = run(models, k=3, t=2)

    assert result["passed"] is True
    assert "return a + b" in result["code"]
    assert [p["plan"] for p in result["plans"]] == ["PLAN-B", "PLAN-C", "PLAN-A"]
    assert [p["confidence"] for p in result["plans"]] == [90, 70, 40]
    assert [p["tried"] for p in result["plans"]] == [True, True, False]
    # PLAN-B: coded once, then exactly t=2 debugging rounds; PLAN-C passes at once; PLAN-A never coded.
    assert len(result["plans"][0]["attempts"]) == 3
    assert roles(result).count("planner") == 3 and roles(result).count("confidence") == 3
    assert roles(result)[-4:] == ["coder", "debugger", "debugger", "coder"]
    assert result["llm_calls"] == 1 + 3 + 3 + 1 + 2 + 1 == len(result["trajectory"])
    assert result["format_failures"] == dict.fromkeys(result["format_failures"], 0)
    assert set(result["format_failures"]) == {"retriever", "planner", "confidence", "coder", "debugger"}
    coder_prompts = models["coder"].prompts
    assert "PLAN-B" in coder_prompts[0] and "PLAN-C" in coder_prompts[1]


def test_debugger_fix_stops_the_run_and_sees_the_test_report() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "PLAN-A",
        confidence=lambda p: confidence(80),
        coder=lambda p: BAD,
        debugger=lambda p: "1. add the numbers\n" + GOOD,
    )
    result = run(models, k=1, t=5)
    assert result["passed"] is True
    assert roles(result) == ["retriever", "planner", "confidence", "coder", "debugger"]
    report_prompt = models["debugger"].prompts[0]
    assert "add(1, 2)" in report_prompt and "-100" in report_prompt  # the failing call and its actual value
    assert result["plans"][0]["attempts"][-1]["plan"] == "1. add the numbers"


def test_best_attempt_is_returned_when_no_plan_passes() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA", "EXB"),
        planner=by_marker({"EXA example": "PLAN-A", "EXB example": "PLAN-B"}),
        confidence=by_marker({"PLAN-A": confidence(90), "PLAN-B": confidence(10)}),
        coder=by_marker({"PLAN-A": BAD, "PLAN-B": HALF}),
        debugger=lambda p: "no code in this answer at all",
    )
    result = run(models, k=2, t=1)
    assert result["passed"] is False
    assert "return 3" in result["code"]  # HALF passed 1 of 2 samples; BAD passed none
    assert [p["plan"] for p in result["plans"]] == ["PLAN-A", "PLAN-B"]
    assert all(p["tried"] and not p["passed"] for p in result["plans"])
    assert result["format_failures"]["debugger"] == 2
    assert roles(result) == [
        "retriever",
        "planner",
        "planner",
        "confidence",
        "confidence",
        "coder",
        "debugger",
        "coder",
        "debugger",
    ]


def test_format_failures_are_counted_and_fallbacks_keep_the_run_going() -> None:
    models = scripted(
        retriever=lambda p: "Sorry, I cannot recall anything useful.",
        planner=lambda p: "1. return a + b",
        confidence=lambda p: "I think it is quite good.",
        coder=lambda p: "Here is my answer: the function adds numbers, trust me.",
        debugger=lambda p: "1. return the sum\n" + GOOD,
    )
    result = run(models, k=3, t=3)
    assert result["passed"] is True
    assert result["format_failures"] == {"retriever": 1, "planner": 0, "confidence": 1, "coder": 1, "debugger": 0}
    # No examples: exactly one plan, written from the problem alone; unreadable confidence scores 0.
    assert len(result["plans"]) == 1 and result["plans"][0]["confidence"] == 0
    assert "No example problem" in models["planner"].prompts[0]
    unparsed = [c for c in result["trajectory"] if not c["parsed"]]
    assert [c["role"] for c in unparsed] == ["retriever", "confidence", "coder"]
    assert unparsed[0]["response"] == "Sorry, I cannot recall anything useful."


def test_unfenced_code_that_compiles_is_used_as_code() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "PLAN-A",
        confidence=lambda p: confidence(50),
        coder=lambda p: "def add(a, b):\n    return a + b\n",
        debugger=lambda p: BAD,
    )
    result = run(models, k=1, t=0)
    assert result["passed"] is True and result["format_failures"]["coder"] == 0


def test_stdin_stdout_problem() -> None:
    problem = {
        "problem": "Read two integers on one line and print their product.",
        "sample_tests": [{"input": "2 3\n", "output": "6\n"}, {"input": "4 5\n", "output": "20"}],
        "entry_point": None,
        "language": "python",
    }
    wrong = "```python\na, b = map(int, input().split())\nprint(a + b)\n```"
    right = "```python\na, b = map(int, input().split())\nprint(a * b)\n```"
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "1. read\n2. multiply",
        confidence=lambda p: confidence(60),
        coder=lambda p: wrong,
        debugger=lambda p: "1. multiply, not add\n" + right,
    )
    result = run(models, problem, k=1, t=5)
    assert result["passed"] is True and "a * b" in result["code"]
    assert "standard input" in models["coder"].prompts[0]
    report = models["debugger"].prompts[0]
    assert "2 3" in report and "6" in report and "5" in report  # input, expected, actual of a failure


def test_t_zero_means_no_debugging() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA", "EXB"),
        planner=by_marker({"EXA example": "PLAN-A", "EXB example": "PLAN-B"}),
        confidence=lambda p: confidence(50),
        coder=lambda p: BAD,
        debugger=lambda p: GOOD,
    )
    result = run(models, k=2, t=0)
    assert result["passed"] is False and "debugger" not in roles(result)
    # Equal confidence keeps retrieval order.
    assert [p["plan"] for p in result["plans"]] == ["PLAN-A", "PLAN-B"]


def test_graph_without_context_uses_defaults() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA", "EXB", "EXC", "EXD"),
        planner=lambda p: "PLAN",
        confidence=lambda p: confidence(50),
        coder=lambda p: GOOD,
        debugger=lambda p: GOOD,
    )
    result = build_graph(chat_models=models).invoke(FUNCTION_PROBLEM)
    assert result["passed"] is True and Context().direct_first  # the direct attempt passed: one call
    assert roles(result) == ["coder"] and result["plans"] == [] and result["direct"]["samples_passed"] == 2
    result = build_graph(chat_models=models).invoke(FUNCTION_PROBLEM, context=Context().paper_graph())
    assert len(result["plans"]) == Context().k == 3  # a fourth recalled example is dropped


def test_unknown_role_in_chat_models_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown roles"):
        build_graph(chat_models=scripted(planer=lambda p: ""))


# ---------------------------------------------------------------- the direct attempt (Context.direct_first)


def test_a_direct_attempt_that_passes_ends_the_run_after_one_call() -> None:
    models = scripted(coder=lambda p: GOOD)  # no other role may be asked
    result = run(models, direct_first=True)
    assert result["passed"] is True and "a + b" in result["code"]
    assert roles(result) == ["coder"] and result["llm_calls"] == 1 and result["plans"] == []
    assert result["format_failures"] == dict.fromkeys(["retriever", "planner", "confidence", "coder", "debugger"], 0)
    assert "Return the sum" in models["coder"].prompts[0] and "plan" not in models["coder"].prompts[0].lower()


def test_a_failing_direct_attempt_runs_mapcoder_and_stays_a_candidate() -> None:
    # The direct answer passes one sample of two; MapCoder's only plan passes none: the direct code wins.
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "PLAN-A",
        confidence=lambda p: confidence(60),
        coder=lambda p: BAD if "PLAN-A" in p else HALF,
        debugger=lambda p: "1. still wrong\n" + BAD,
    )
    result = run(models, direct_first=True, k=1, t=2)
    assert result["passed"] is False and "return 3" in result["code"]
    assert roles(result)[:4] == ["coder", "retriever", "planner", "confidence"]
    assert result["direct"]["samples_passed"] == 1 and result["plans"][0]["tried"]


def test_a_debugger_that_returns_code_already_tried_ends_its_plan() -> None:
    # The debugger repeats the plan's failing program: the verdict is known, so the plan's rounds stop.
    models = scripted(
        retriever=lambda p: retrieval("EXA", "EXB"),
        planner=by_marker({"EXA example": "PLAN-A", "EXB example": "PLAN-B"}),
        confidence=by_marker({"PLAN-A": confidence(90), "PLAN-B": confidence(10)}),
        coder=by_marker({"PLAN-A": BAD, "PLAN-B": GOOD}),
        debugger=lambda p: "1. same again\n" + BAD,
    )
    result = run(models, k=2, t=5, stop_repeats=True)
    assert result["passed"] is True and "a + b" in result["code"]
    assert roles(result).count("debugger") == 1  # not 5: its first answer was the code it was shown
    assert [len(plan["attempts"]) for plan in result["plans"]] == [2, 1]


# ---------------------------------------------------------------- different plans (Context.plan_diversity)


def test_plans_alike_are_coded_once_with_plan_diversity_and_each_without() -> None:
    def models() -> dict:
        return scripted(
            retriever=lambda p: retrieval("EXA", "EXB", "EXC"),
            planner=by_marker({"EXA example": "1. Add  them", "EXB example": "1. add them", "EXC example": "PLAN-C"}),
            confidence=by_marker({"PLAN-C": confidence(10)}, default=confidence(50)),
            coder=by_marker({"PLAN-C": GOOD}, default=BAD),
            debugger=lambda p: "1. still wrong\n" + BAD,
        )
    result = run(models(), k=3, t=0, plan_diversity=True)
    # "1. add them" repeats "1. Add  them" (case and spacing aside): only two plans are coded.
    assert result["passed"] is True and [p["plan"] for p in result["plans"]] == ["1. Add  them", "PLAN-C"]
    assert [p["copies"] for p in result["plans"]] == [1, 0]
    assert roles(result).count("coder") == 2
    # The copy is not scored: the confidence agent judges each text once.
    assert roles(result).count("confidence") == 2 and [p["confidence"] for p in result["plans"]] == [50, 10]
    result = run(models(), k=3, t=0)  # the paper's graph: the copy is scored and coded too
    assert len(result["plans"]) == 3 and roles(result).count("coder") == 3 and result["passed"] is True
    assert roles(result).count("confidence") == 3


def test_plans_all_alike_are_not_scored_with_plan_diversity() -> None:
    def models() -> dict:
        return scripted(
            retriever=lambda p: retrieval("EXA", "EXB", "EXC"),
            planner=lambda p: "1. add them",
            confidence=lambda p: confidence(70),
            coder=lambda p: GOOD,
            debugger=lambda p: "1. still wrong\n" + BAD,
        )
    result = run(models(), k=3, t=0, plan_diversity=True)
    assert roles(result) == ["retriever", "planner", "planner", "planner", "coder"]
    (plan,) = result["plans"]
    assert plan["confidence"] is None and plan["copies"] == 2 and "no other plan" in plan["explanation"]
    result = run(models(), k=3, t=0)  # the paper's graph scores each
    assert roles(result).count("confidence") == 3 and [p["confidence"] for p in result["plans"]] == [70, 70, 70]


def test_a_program_already_tested_is_asked_for_once_more() -> None:
    # The direct answer fails; the plan's coder first writes the same program, then (asked again) another.
    answers = iter([BAD, BAD, GOOD])
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "PLAN-A",
        confidence=lambda p: confidence(60),
        coder=lambda p: next(answers),
        debugger=lambda p: "1. still wrong\n" + BAD,
    )
    result = run(models, k=1, t=0, direct_first=True, plan_diversity=True)
    assert result["passed"] is True and "a + b" in result["code"]
    # One plan: nothing to rank it against, so no confidence call (Context.plan_diversity).
    assert roles(result) == ["coder", "retriever", "planner", "coder", "coder"]
    assert result["llm_calls"] == 5 and result["plans"][0]["repeated"] and not result["plans"][0]["still_repeated"]
    assert [a["code"] for a in result["plans"][0]["attempts"]] == [result["code"]]  # the repeat is never run


def test_a_program_still_repeated_is_tested_and_debugged_under_its_plan() -> None:
    models = scripted(
        retriever=lambda p: retrieval("EXA"),
        planner=lambda p: "PLAN-A",
        confidence=lambda p: confidence(60),
        coder=lambda p: BAD,
        debugger=lambda p: "1. add\n" + GOOD,
    )
    result = run(models, k=1, t=1, direct_first=True, plan_diversity=True)
    assert result["passed"] is True and result["plans"][0]["still_repeated"]
    assert roles(result) == ["coder", "retriever", "planner", "coder", "coder", "debugger"]


def test_collection_contexts_run_the_papers_graph() -> None:
    from mapcoder_lite.collection import SupervisorContext

    assert all(getattr(SupervisorContext(), lever) is False for lever in LEVERS)
    assert all(getattr(Context(), lever) is True for lever in LEVERS)
    assert all(getattr(Context(k=2).paper_graph(), lever) is False for lever in LEVERS)


def test_the_samples_run_the_program_as_scoring_does_after_the_problems_prefix() -> None:
    # HumanEval's scoring runs its prompt before the program, so a program may use the prompt's
    # `from typing import List` without importing it; the samples must judge that same program.
    typed = "```python\ndef add(a: List[int], b):\n    return a + b\n```"
    problem = FUNCTION_PROBLEM | {"prefix": "from typing import List\n"}
    result = run(scripted(coder=lambda p: typed), problem, direct_first=True)
    assert result["passed"] is True and result["llm_calls"] == 1
    without = scripted(coder=lambda p: typed, retriever=lambda p: retrieval("EXA"), planner=lambda p: "PLAN",
                       confidence=lambda p: confidence(50), debugger=lambda p: "1. same\n" + typed)
    assert run(without, FUNCTION_PROBLEM, direct_first=True, k=1, t=0)["passed"] is False  # NameError: List


def test_the_debugger_reads_line_numbers_of_the_code_it_is_shown_not_of_the_prefix_before_it() -> None:
    failing = "```python\ndef add(a: List[int], b):\n    total = a + b\n    return total + missing\n```"
    prefix = "from typing import List\n\n\n" + FUNCTION_PROBLEM["problem"]  # five lines before the code
    models = scripted(retriever=lambda p: retrieval("EXA"), planner=lambda p: "PLAN", coder=lambda p: failing,
                      confidence=lambda p: confidence(50), debugger=lambda p: "1. add\n" + GOOD)
    result = run(models, FUNCTION_PROBLEM | {"prefix": prefix}, k=1, t=1)
    assert result["passed"] is True
    shown = models["debugger"].prompts[0]
    assert 'File "solution.py", line 3, in add' in shown and "NameError" in shown, shown


def test_a_benchmark_problem_gives_the_graph_its_prefix_but_no_hidden_test() -> None:
    from mapcoder_lite.evals.datasets import load_problems

    problem = next(iter(load_problems("humaneval", "test", limit=1)))
    state = problem.graph_input()
    assert state["prefix"] == problem.prefix and "from typing import List" in state["prefix"]
    assert not any(test in str(state) for test in problem.hidden_tests) and problem.check not in str(state)
