"""Hidden-test scoring: a final program against every hidden test, in the graph's sandbox.

Function problems run the benchmark's own check code (HumanEval's ``check(candidate)``, MultiPL-E's
check) once, and MBPP's asserts one per process after its ``test_setup_code``; stdin/stdout problems
run once per test, passing on an exact output match after trimming trailing white space per line
(any one of a test's acceptable outputs). Each test runs under the same per-test `Limits`.
A problem is solved (pass@1) only if its program passes every hidden test.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace
from typing import Any

from mapcoder_lite.evals.datasets import ET_FLOAT_TOLERANCE, Problem
from mapcoder_lite.sandbox import (
    Limits,
    Sandbox,
    TestOutcome,
    TestReport,
    clip,
    get_sandbox,
    run_check,
    run_tests,
)


@dataclass
class Score:
    """The verdict on one program: pass@1, and pass@1 (ET) where the dataset has HumanEval-ET tests."""

    passed: bool
    report: dict[str, Any]  # passed / total / skipped / all_passed, and the outcomes of the tests run
    passed_extra: bool | None = None  # the hidden tests AND the extra (ET) tests; None without extras
    extra_report: dict[str, Any] | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scoring_limits(test_timeout_s: float = 10.0, memory_mb: int = 1024) -> Limits:
    """Per-test limits, the same as the graph's sample tests get."""
    return Limits.per_test(test_timeout_s, memory_mb)


# A batch of ~100 asserts gets this many per-test limits: the canonical HumanEval/39 needs ~12 s
# for prime_fib(12) alone, /63's naive fibfib(27..30) ~7 s together.
BATCH_FACTOR = 6


def batch_limits(limits: Limits) -> Limits:
    return replace(limits, timeout_s=limits.timeout_s * BATCH_FACTOR, cpu_s=limits.cpu_s * BATCH_FACTOR)


# Outcomes go into results.jsonl, one line per problem: CodeContests inputs can be megabytes, and a
# passing test needs less detail than a failing one.
_PASSED_CHARS, _FAILED_CHARS = 200, 2000


def _slim(outcome: TestOutcome) -> dict[str, Any]:
    limit = _PASSED_CHARS if outcome.passed else _FAILED_CHARS
    slim: dict[str, Any] = {"passed": outcome.passed}
    for key in ("input", "expected", "actual", "error"):
        value = getattr(outcome, key)
        if value is not None and not (outcome.passed and key in ("actual", "error")):
            slim[key] = clip(value, limit, tail_heavy=key == "error")
    return slim


def _report(outcomes: list[TestOutcome], skipped: int = 0) -> dict[str, Any]:
    passed = sum(o.passed for o in outcomes)
    return {
        "passed": passed,
        "total": len(outcomes) + skipped,
        "skipped": skipped,
        "all_passed": bool(outcomes) and passed == len(outcomes) and skipped == 0,
        "outcomes": [_slim(o) for o in outcomes],
    }


def _no_code(problem: Problem) -> Score:
    missing = TestOutcome(test="(no code)", passed=False, input=None, expected=None, actual=None,
                          error="no code to score: the strategy produced no program")
    extra = _report([missing]) if problem.extra_tests else None
    return Score(passed=False, report=_report([missing]), passed_extra=False if extra else None,
                 extra_report=extra)


def score(
    problem: Problem,
    code: str | None,
    *,
    sandbox: Sandbox | str = "local",
    limits: Limits | None = None,
    stop_early: bool = True,
) -> Score:
    """Run `code` (after the problem's prefix) against all of `problem`'s hidden tests.

    stop_early stops at the first failing test (the verdict cannot change; later tests are counted
    as skipped), which keeps hopeless programs on benchmarks with hundreds of tests cheap.
    """
    start = time.perf_counter()
    if not code or not code.strip():
        return _no_code(problem)
    if not problem.has_hidden_tests:
        raise ValueError(f"{problem.id}: the problem has no hidden tests to score against")
    box = get_sandbox(sandbox) if isinstance(sandbox, str) else sandbox
    limits = limits or scoring_limits()
    # The program run is problem.program(code), the prefix then the code in one namespace; given apart,
    # a failure's traceback numbers the code's own lines, as the supervisor reads them beside the code.

    outcomes: list[TestOutcome] = []
    if problem.check:
        # The prompt is the check's trusted prelude too: HumanEval's checks call helpers it defines.
        outcomes.append(run_check(box, code, problem.check, entry_point=problem.entry_point,
                                  prelude=problem.prefix, limits=limits, prefix=problem.prefix))
    tests = problem.hidden_tests
    for test in tests:
        if stop_early and outcomes and not outcomes[-1].passed:
            break
        # MBPP's setup code builds objects from the program's classes, so it runs after the program.
        report = run_tests(box, code, [test], entry_point=problem.entry_point, language=problem.language,
                           setup=problem.test_setup, limits=limits, prefix=problem.prefix)
        outcomes.extend(report.outcomes)
    ran_tests = len(outcomes) - (1 if problem.check else 0)
    hidden = _report(outcomes, skipped=len(tests) - ran_tests)
    passed = bool(hidden["all_passed"])

    passed_extra, extra = None, None
    if problem.extra_tests:
        if passed or not stop_early:
            # HumanEval-ET's ~100 asserts run as one batch in one process: one per assert would
            # cost ~17,000 sandbox starts for the benchmark; the traceback names the failing one.
            batch = "\n".join(problem.extra_tests)
            outcome = run_check(box, code, batch, entry_point=problem.entry_point, prelude=problem.prefix,
                                float_tolerance=ET_FLOAT_TOLERANCE, limits=batch_limits(limits), prefix=problem.prefix)
            extra = _report([outcome])
        else:
            extra = _report([], skipped=1)
        passed_extra = passed and bool(extra["all_passed"])
    return Score(passed=passed, report=hidden, passed_extra=passed_extra, extra_report=extra,
                 seconds=round(time.perf_counter() - start, 3))


def check_samples(
    problem: Problem, code: str, *, sandbox: Sandbox | str = "local", limits: Limits | None = None
) -> TestReport:
    """The problem's samples against a complete program (with the prefix): the reference's self-check."""
    box = get_sandbox(sandbox) if isinstance(sandbox, str) else sandbox
    return run_tests(box, code, problem.sample_tests, entry_point=problem.entry_point,
                     language=problem.language, limits=limits or scoring_limits(), prefix=problem.prefix)
