"""Run a program against sample tests (assert strings or stdin/stdout pairs) and report for the debugger.

Function tests are judged outside the program's process (see verdict.py): the program's process only
answers with plain data, so nothing the program does can make a test pass. Stdin/stdout tests compare
the program's output here. Each test runs in processes of its own.

A `prefix` (a benchmark's prompt: imports and the function's stub) runs before the code, in its
namespace, as scoring runs it; a function test's tracebacks still number the code's lines from the
code's own start, unless the code continues a statement of the prefix (harness/candidate.py). A
stdin/stdout program runs as one script, prefix + code.
"""

from __future__ import annotations

import ast
from dataclasses import asdict, dataclass, field
from typing import Any

from mapcoder_lite.sandbox.base import Limits, Sandbox, clip, language_spec, with_stderr
from mapcoder_lite.sandbox.verdict import MAX_FIELD_CHARS, Verdict, direct_asserts, judge_checked, judge_direct

_SHAPES = (
    "each test must be either an assert string such as \"assert add(1, 2) == 3\" (function problem) "
    "or a dict {\"input\": <stdin str>, \"output\": <expected stdout str, or list of acceptable outputs>} "
    "(stdin/stdout problem)"
)


def _share(lengths: list[int], budget: int) -> list[int]:
    """Split budget over fields: short ones get all they need, long ones share the rest equally."""
    shares = [0] * len(lengths)
    left, pending = budget, sorted(range(len(lengths)), key=lambda i: lengths[i])
    while pending:
        fair = left // len(pending)
        i = pending.pop(0)
        shares[i] = min(lengths[i], fair)
        left -= shares[i]
    return shares


@dataclass
class TestOutcome:
    __test__ = False  # not a pytest test class

    test: str | dict[str, Any]  # the sample test as given
    passed: bool
    input: str | None  # stdin, or the assert's call expression
    expected: str | None
    actual: str | None  # program output, or repr of the left side of `assert lhs == rhs`
    error: str | None  # exception text / "timed out after 10s" / "exit code 1" ...


@dataclass
class TestReport:
    __test__ = False

    outcomes: list[TestOutcome] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(o.passed for o in self.outcomes)

    @property
    def total(self) -> int:
        return len(self.outcomes)

    @property
    def all_passed(self) -> bool:
        return self.passed == self.total

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "all_passed": self.all_passed,
            "outcomes": [asdict(o) for o in self.outcomes],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TestReport:
        return cls([TestOutcome(**o) for o in data.get("outcomes", [])])

    def render(self, max_chars: int = 2000) -> str:
        """Failing tests with input / expected / actual / error, bounded by max_chars."""
        header = f"Passed {self.passed} of {self.total} tests."
        failing = [(i, o) for i, o in enumerate(self.outcomes, 1) if not o.passed]
        if not failing:
            return clip(header, max_chars)

        def more(shown: int) -> str:
            hidden = len(failing) - shown
            return f"\n\n({hidden} more failing tests not shown)" if hidden else ""

        text = header
        # Each shown test gets at least ~500 chars: a few readable failures help more than many stubs.
        for shown in range(max(1, min(len(failing), (max_chars - len(header)) // 500)), 0, -1):
            per_test = (max_chars - len(header) - len(more(shown))) // shown - 2
            blocks = [_block(index, outcome, per_test) for index, outcome in failing[:shown]]
            text = "\n\n".join([header, *blocks]) + more(shown)
            if len(text) <= max_chars:
                return text
        return clip(text, max_chars)  # only when max_chars is too small for even one short block


def _block(index: int, outcome: TestOutcome, budget: int) -> str:
    title = f"Test {index} failed:"
    fields = [(name, value) for name, value in _fields(outcome) if value is not None]
    # Shares are of rendered size (labels, indentation): short fields whole, long ones split the rest.
    shares = _share([len(_field(n, v)) for n, v in fields], budget - len(title) - len(fields))
    lines = [title]
    for (name, value), share in zip(fields, shares, strict=True):
        lines.append(_fit(name, value, share))
    return "\n".join(lines)


def _fit(name: str, value: str, share: int) -> str:
    """The field rendered within share chars if it can be: multi-line values pay for their indentation."""
    limit = share
    while True:
        text = _field(name, clip(value, max(limit, 20), tail_heavy=name == "error"))
        if len(text) <= share or limit <= 20:
            return text
        limit = min(limit - 1, limit * share // len(text))


def _fields(outcome: TestOutcome) -> list[tuple[str, str | None]]:
    return [("input", outcome.input), ("expected", outcome.expected), ("actual", outcome.actual),
            ("error", outcome.error)]


def _field(name: str, value: str) -> str:
    if "\n" in value.rstrip("\n"):
        body = "\n".join("    " + line for line in value.rstrip("\n").split("\n"))
        return f"  {name}:\n{body}"
    return f"  {name}: {value.rstrip(chr(10)) if value.strip() else repr(value)}"


# ---------------------------------------------------------------- test shapes


@dataclass(frozen=True)
class _FunctionTest:
    source: str
    lhs: str | None = None  # set for a single `assert lhs == rhs [, msg]`
    rhs: str | None = None
    msg: str | None = None
    lhs_text: str | None = None  # as written, for the report
    rhs_text: str | None = None


def _parse_function_test(test: str, index: int) -> _FunctionTest:
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise ValueError(f"test {index} is not valid Python ({exc.msg}): {test!r}") from exc
    stmt = tree.body[0] if len(tree.body) == 1 else None
    if (
        isinstance(stmt, ast.Assert)
        and isinstance(stmt.test, ast.Compare)
        and len(stmt.test.ops) == 1
        and isinstance(stmt.test.ops[0], ast.Eq)
    ):
        left, right = stmt.test.left, stmt.test.comparators[0]
        return _FunctionTest(
            source=test,
            lhs=ast.unparse(left),
            rhs=ast.unparse(right),
            msg=ast.unparse(stmt.msg) if stmt.msg else None,
            lhs_text=ast.get_source_segment(test, left) or ast.unparse(left),
            rhs_text=ast.get_source_segment(test, right) or ast.unparse(right),
        )
    return _FunctionTest(source=test)


def _check_stdio_test(test: dict[Any, Any], index: int) -> None:
    if not {"input", "output"} <= test.keys():
        raise ValueError(f"test {index} is a dict without 'input' and 'output': {test!r}; {_SHAPES}")
    if not isinstance(test["input"], str):
        kind = type(test["input"]).__name__
        raise ValueError(f"test {index}: 'input' must be a str (got {kind}); {_SHAPES}")


# ---------------------------------------------------------------- stdio


def _normalize(text: str) -> str:
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _expected_outputs(output: Any) -> list[str]:
    options = output if isinstance(output, list | tuple) else [output]
    return [o if isinstance(o, str) else str(o) for o in options]


def _run_stdio(
    sandbox: Sandbox, code: str, test: dict[str, Any], language: str, limits: Limits
) -> TestOutcome:
    options = _expected_outputs(test["output"])
    result = sandbox.run(code, language=language, stdin=test["input"], limits=limits)
    actual = _normalize(result.stdout)
    passed = result.ok and not result.truncated and any(_normalize(o) == actual for o in options)
    error = None
    if not passed:
        problem = result.describe_failure(limits)
        if result.truncated and problem is None:
            problem = f"output exceeded {limits.max_output_bytes} bytes and was cut"
        error = with_stderr(problem or "wrong answer", result)
    expected = options[0] if len(options) == 1 else "\n--- or ---\n".join(options)
    return TestOutcome(
        test=test, passed=passed, input=test["input"], expected=expected,
        actual=clip(result.stdout, MAX_FIELD_CHARS), error=error and clip(error, MAX_FIELD_CHARS),
    )


# ---------------------------------------------------------------- public


def validate_tests(tests: list[Any], language: str = "python", *, allow_empty: bool = False) -> None:
    """Refuse tests that cannot be run, naming the first bad one: before any model call is spent."""
    language_spec(language)  # unsupported language: ValueError
    if not isinstance(tests, list):
        raise ValueError(f"sample tests must be a list (got {type(tests).__name__}); {_SHAPES}")
    if not tests and not allow_empty:
        raise ValueError("there are no sample tests: give at least one, or no code can be checked before it "
                         f"is returned; {_SHAPES}")
    _parsed(tests, language)


def _parsed(tests: list[Any], language: str) -> list[_FunctionTest | None]:
    parsed: list[_FunctionTest | None] = []
    for index, test in enumerate(tests, 1):
        if isinstance(test, str):
            if language_spec(language) != language_spec("python"):
                raise ValueError(f"test {index} is an assert string, which needs language='python'")
            parsed.append(_parse_function_test(test, index))
        elif isinstance(test, dict):
            _check_stdio_test(test, index)
            parsed.append(None)
        else:
            raise ValueError(f"test {index} has type {type(test).__name__}; {_SHAPES}")
    return parsed


def judge_function_test(
    sandbox: Sandbox,
    code: str,
    test: str,
    *,
    entry_point: str | None,
    setup: str = "",
    prelude: str = "",
    call_check: bool = False,
    float_tolerance: float | None = None,
    limits: Limits,
    prefix: str = "",
) -> Verdict:
    """One function test's verdict. `prefix` runs before the program in its namespace (see the module
    doc); `setup` runs in that namespace after it (MBPP's test_setup_code); `prelude` is trusted code the
    test may use (HumanEval's prompt and its helpers); float_tolerance lets `assert f(x) == <float>`
    pass within it (HumanEval-ET's rule)."""
    direct = None if call_check else direct_asserts(test)
    if direct is not None:
        own_setup, checks = direct
        return judge_direct(sandbox, code, "\n".join(filter(None, (setup, own_setup))), checks,
                            entry_point=entry_point, limits=limits, float_tolerance=float_tolerance,
                            prefix=prefix)
    return judge_checked(sandbox, code, test, entry_point=entry_point, setup=setup, prelude=prelude,
                         call_check=call_check, float_tolerance=float_tolerance, limits=limits, prefix=prefix)


def run_tests(
    sandbox: Sandbox,
    code: str,
    tests: list[Any],
    *,
    entry_point: str | None = None,
    language: str = "python",
    limits: Limits | None = None,
    setup: str = "",
    float_tolerance: float | None = None,
    prefix: str = "",
) -> TestReport:
    """Run code (after `prefix`) against each test in processes of its own; see the module doc for how
    tests pass."""
    limits = limits or Limits()
    parsed = _parsed(tests, language)  # validate every test first: a bad one is a caller bug
    outcomes = []
    for test, fn_test in zip(tests, parsed, strict=True):
        if fn_test is None:
            outcomes.append(_run_stdio(sandbox, prefix + code, test, language, limits))
            continue
        verdict = judge_function_test(sandbox, code, test, entry_point=entry_point, setup=setup,
                                      float_tolerance=float_tolerance, limits=limits, prefix=prefix)
        outcomes.append(TestOutcome(
            test=test, passed=verdict.passed,
            input=fn_test.lhs_text if fn_test.lhs is not None else test,
            expected=fn_test.rhs_text, actual=None if verdict.passed else verdict.actual,
            error=verdict.error and clip(verdict.error, MAX_FIELD_CHARS),
        ))
    return TestReport(outcomes)


def run_check(
    sandbox: Sandbox,
    code: str,
    check_code: str,
    *,
    entry_point: str | None = None,
    prelude: str = "",
    setup: str = "",
    float_tolerance: float | None = None,
    limits: Limits | None = None,
    prefix: str = "",
) -> TestOutcome:
    """Benchmark check: HumanEval's `def check(candidate)` (called with the program's entry point), or a
    batch of asserts (MBPP's, HumanEval-ET's). `prefix` runs before the program (see the module doc);
    `prelude` is the trusted code the check may use besides the program (HumanEval's prompt). Judged
    outside the program's process, like every function test."""
    limits = limits or Limits()
    try:
        tree = ast.parse(check_code)
    except SyntaxError as exc:
        raise ValueError(f"check_code is not valid Python ({exc.msg})") from exc
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    if defines_check and not entry_point:
        raise ValueError("check_code defines check(candidate); pass entry_point so it can be called")
    verdict = judge_function_test(sandbox, code, check_code, entry_point=entry_point, setup=setup,
                                  prelude=prelude, call_check=defines_check, float_tolerance=float_tolerance,
                                  limits=limits, prefix=prefix)
    return TestOutcome(test=check_code, passed=verdict.passed, input=None, expected=None,
                       actual=verdict.actual, error=verdict.error and clip(verdict.error, MAX_FIELD_CHARS))
