"""Hidden-test scoring with known-good and known-bad programs, for function and stdin/stdout problems."""

from __future__ import annotations

import pytest

from mapcoder_lite.evals.datasets import Problem, apps_problem
from mapcoder_lite.evals.scoring import score, scoring_limits

FAST = scoring_limits(test_timeout_s=1.5)  # the timeout case waits this long, once

CHECK = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""
FUNCTION = Problem(id="F/1", problem="def add(a, b): ...", sample_tests=["assert add(1, 2) == 3"],
                   entry_point="add", check=CHECK, extra_tests=["assert add(10, 5) == 15", "assert add(0, 0) == 0"])
ASSERTS = Problem(id="M/1", problem="Write add.", sample_tests=["assert add(1, 2) == 3"], entry_point="add",
                  hidden_tests=["assert add(1, 2) == 3", "assert add(2, 2) == 4", "assert add(0, 5) == 5"])
STDIO = Problem(id="S/1", problem="Print a * b.", sample_tests=[{"input": "2 3\n", "output": ["6"]}],
                hidden_tests=[{"input": "2 3\n", "output": ["6"]}, {"input": "4 5\n", "output": ["20\n"]},
                              {"input": "0 9\n", "output": ["0", "-0"]}])
MULTIPLY = "a, b = map(int, input().split())\nprint(a * b)\n"


def outcome_errors(report: dict) -> str:
    return "\n".join(o.get("error") or "" for o in report["outcomes"])


def test_function_problem_good_bad_crash_and_timeout() -> None:
    good = score(FUNCTION, "def add(a, b):\n    print('debug output is fine here')\n    return a + b\n", limits=FAST)
    assert good.passed and good.passed_extra is True and good.report["total"] == 1

    wrong = score(FUNCTION, "def add(a, b):\n    return a * b\n", limits=FAST)
    assert not wrong.passed and wrong.passed_extra is False
    assert "AssertionError" in outcome_errors(wrong.report)

    crash = score(FUNCTION, "def add(a, b):\n    raise RuntimeError('boom')\n", limits=FAST)
    assert not crash.passed and "RuntimeError: boom" in outcome_errors(crash.report)

    slow = score(FUNCTION, "def add(a, b):\n    while True:\n        pass\n", limits=FAST)
    assert not slow.passed and "timed out" in outcome_errors(slow.report)

    missing = score(FUNCTION, "def plus(a, b):\n    return a + b\n", limits=FAST)
    assert not missing.passed
    assert not score(FUNCTION, "", limits=FAST).passed


def test_extra_tests_decide_pass_at_1_et_only() -> None:
    # Passes the original check, fails the ET assert add(0, 0) == 0.
    quirky = "def add(a, b):\n    return a + b if (a, b) != (0, 0) else 1\n"
    verdict = score(FUNCTION, quirky, limits=FAST)
    assert verdict.passed and verdict.passed_extra is False
    assert "add(0, 0)" in outcome_errors(verdict.extra_report)


def test_assert_tests_stop_at_the_first_failure_unless_asked_not_to() -> None:
    half = "def add(a, b):\n    return {1: 3, 0: 5}.get(a, 0)\n"  # fails the second test only
    early = score(ASSERTS, half, limits=FAST)
    assert not early.passed and (early.report["passed"], early.report["skipped"]) == (1, 1)
    full = score(ASSERTS, half, limits=FAST, stop_early=False)
    assert (full.report["passed"], full.report["total"], full.report["skipped"]) == (2, 3, 0)
    assert score(ASSERTS, "def add(a, b):\n    return a + b\n", limits=FAST).passed


def test_stdio_exact_output_after_trimming_trailing_white_space() -> None:
    assert score(STDIO, MULTIPLY, limits=FAST).passed
    padded = "a, b = map(int, input().split())\nprint(str(a * b) + '   ')\nprint()\n"
    assert score(STDIO, padded, limits=FAST).passed  # trailing spaces and blank lines are trimmed

    chatty = "a, b = map(int, input().split())\nprint('The answer is:')\nprint(a * b)\n"
    verdict = score(STDIO, chatty, limits=FAST)
    assert not verdict.passed and "wrong answer" in outcome_errors(verdict.report)
    extra_line = MULTIPLY + "print('done')\n"
    assert not score(STDIO, extra_line, limits=FAST).passed

    crash = score(STDIO, "raise SystemExit(3)\n", limits=FAST)
    assert not crash.passed and "exit code 3" in outcome_errors(crash.report)
    slow = score(STDIO, "while True:\n    pass\n", limits=FAST)
    assert not slow.passed and "timed out" in outcome_errors(slow.report)


def test_apps_stdin_reference_scores_and_function_style_has_none() -> None:
    stdin = {"id": 1, "description": "Print the sum.", "starter_code": "",
             "sample_io": [{"input": "1 2", "output": ["3"]}],
             "test_list": [{"input": "1 2", "output": ["3"]}, {"input": "5 5", "output": [10]}],
             "solutions": '["print(sum(map(int, input().split())))"]'}
    problem = apps_problem(stdin)
    assert problem.reference and score(problem, problem.reference, limits=FAST).passed
    function = dict(stdin, starter_code="\ndef add(a, b):\n\t")
    assert apps_problem(function).reference is None


def test_a_problem_without_hidden_tests_cannot_be_scored() -> None:
    with pytest.raises(ValueError, match="no hidden tests"):
        score(Problem(id="x", problem="p", sample_tests=[]), "print(1)", limits=FAST)
