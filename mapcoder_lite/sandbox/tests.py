"""Run a program against sample tests (assert strings or stdin/stdout pairs) and report for the debugger.

Function tests run one process per test through a small harness: it loads the program as module
`solution` (so an `if __name__ == "__main__":` block does not run, as in HumanEval's own checker),
runs the test, and prints a random nonce only after the test succeeded. A test passes only on that
positive proof, so a program that calls sys.exit(0) / os._exit(0) while loading cannot pass.
"""

from __future__ import annotations

import ast
import json
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any

from mapcoder_lite.sandbox.base import Limits, RunResult, Sandbox, language_spec

# Outcome fields (actual output, errors) are stored clipped: they travel in graph state and results files.
MAX_FIELD_CHARS = 20_000
_REPR_CHARS = 2_000
_STDERR_TAIL = 2_000

_SHAPES = (
    "each test must be either an assert string such as \"assert add(1, 2) == 3\" (function problem) "
    "or a dict {\"input\": <stdin str>, \"output\": <expected stdout str, or list of acceptable outputs>} "
    "(stdin/stdout problem)"
)


def clip(text: str, limit: int, *, tail_heavy: bool = False) -> str:
    """Keep head and tail of text within limit chars, saying how much was cut. tail_heavy keeps more of
    the end (tracebacks end with the useful line)."""
    if len(text) <= limit:
        return text
    digits = len(str(len(text)))
    room = limit - len("\n...[ chars cut]...\n") - digits
    if room < 30:  # too small for head and tail: keep the head and still say what was cut
        head = limit - len("...[ chars cut]") - digits
        return f"{text[:head]}...[{len(text) - head} chars cut]" if head > 0 else text[:limit]
    head = room // 3 if tail_heavy else room * 2 // 3
    tail = room - head
    return f"{text[:head]}\n...[{len(text) - head - tail} chars cut]...\n{text[len(text) - tail:]}"


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


# ---------------------------------------------------------------- harness

_HARNESS = r'''
import json as _json, linecache as _linecache, os as _os, sys as _sys, traceback as _traceback
import types as _types

_SPEC = _json.loads(__SPEC__)


def _emit(kind, payload=None):
    for stream in (_sys.stdout, _sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    line = "\n" + _SPEC["nonce"] + ":" + kind + ":" + _json.dumps(payload) + "\n"
    _os.write(1, line.encode("utf-8", "replace"))


def _compile(name, text, mode="exec"):
    # Registered so tracebacks show the lines (mtime None: linecache never drops the entry).
    _linecache.cache[name] = (len(text), None, text.splitlines(True), name)
    return compile(text, name, mode)


def _fail(stage, exc):
    if isinstance(exc, SystemExit):
        _emit("ERROR", "the program called sys.exit(%r) %s" % (exc.code, stage))
    else:
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next  # the harness's own frames mean nothing to the reader
        _emit("ERROR", "".join(_traceback.format_exception(type(exc), exc, tb)).rstrip())
    _os._exit(1)


def _repr(value):
    try:
        text = repr(value)
    except BaseException as exc:
        return "<repr failed: %s>" % type(exc).__name__
    limit = __REPR_CHARS__
    if len(text) > limit:
        text = text[: limit // 2] + "...[%d chars cut]..." % (len(text) - limit) + text[-(limit // 2):]
    return text


def _main():
    module = _types.ModuleType("solution")
    module.__file__ = "solution.py"
    _sys.modules["solution"] = module
    ns = module.__dict__
    try:
        exec(_compile("solution.py", _SPEC["code"]), ns)
    except BaseException as exc:
        _fail("while loading", exc)
    entry = _SPEC["entry_point"]
    if entry:
        if entry not in ns:
            _emit("ERROR", "NameError: the program does not define the entry point %r" % entry)
            _os._exit(1)
        ns.setdefault("candidate", ns[entry])
    try:
        if _SPEC["lhs"] is not None:
            _linecache.cache["<test>"] = (0, None, _SPEC["test"].splitlines(True), "<test>")
            left = eval(compile(_SPEC["lhs"], "<test>", "eval"), ns)
            right = eval(compile(_SPEC["rhs"], "<test>", "eval"), ns)
            if not left == right:
                _emit("ACTUAL", _repr(left))
                msg = _SPEC["msg"]
                raise AssertionError(*(() if msg is None else (eval(compile(msg, "<test>", "eval"), ns),)))
        else:
            exec(_compile(_SPEC["test_name"], _SPEC["test"]), ns)
            if _SPEC["call_check"]:
                ns["check"](ns[entry])
    except BaseException as exc:
        _fail("during the test", exc)
    _emit("PASS")
    _os._exit(0)  # skip atexit hooks and non-daemon threads the program may have left


_main()
'''


def _harness(code: str, test: str, *, nonce: str, entry_point: str | None, parsed: _FunctionTest | None,
             call_check: bool = False) -> str:
    spec = {
        "nonce": nonce, "code": code, "test": test, "entry_point": entry_point, "call_check": call_check,
        "test_name": "<check>" if call_check or parsed is None else "<test>",
        "lhs": parsed.lhs if parsed else None, "rhs": parsed.rhs if parsed else None,
        "msg": parsed.msg if parsed else None,
    }
    return (_HARNESS.replace("__SPEC__", repr(json.dumps(spec)))
            .replace("__REPR_CHARS__", str(_REPR_CHARS)))


@dataclass
class _HarnessResult:
    passed: bool
    actual: str | None
    error: str | None


def _read_harness(result: RunResult, nonce: str, limits: Limits) -> _HarnessResult:
    marks: dict[str, Any] = {}
    prefix = nonce + ":"
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            kind, _, payload = line[len(prefix):].partition(":")
            try:
                marks[kind] = json.loads(payload)
            except ValueError:
                marks[kind] = payload
    actual = marks.get("ACTUAL")
    if "PASS" in marks and result.ok:
        return _HarnessResult(True, None, None)
    error = marks.get("ERROR")
    problem = result.describe_failure(limits)
    if problem and (error is None or result.timed_out or result.truncated):
        error = f"{problem}\n{error}" if error else problem
        error = _with_stderr(error, result)
    elif error is None:
        error = _with_stderr(
            f"the program ended (exit code {result.exit_code}) before the test finished, "
            "e.g. sys.exit() or os._exit() while loading", result)
    actual = actual if isinstance(actual, str) else None
    return _HarnessResult(False, actual, clip(str(error), MAX_FIELD_CHARS))


def _with_stderr(error: str, result: RunResult) -> str:
    tail = result.stderr.strip()
    if tail:
        error += "\nstderr:\n" + clip(tail, _STDERR_TAIL)
    return error


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
        error = _with_stderr(problem or "wrong answer", result)
    expected = options[0] if len(options) == 1 else "\n--- or ---\n".join(options)
    return TestOutcome(
        test=test, passed=passed, input=test["input"], expected=expected,
        actual=clip(result.stdout, MAX_FIELD_CHARS), error=error and clip(error, MAX_FIELD_CHARS),
    )


# ---------------------------------------------------------------- public


def run_tests(
    sandbox: Sandbox,
    code: str,
    tests: list[Any],
    *,
    entry_point: str | None = None,
    language: str = "python",
    limits: Limits | None = None,
) -> TestReport:
    """Run code against each test in its own process; see the module doc for how function tests pass."""
    limits = limits or Limits()
    language_spec(language)  # unsupported language: ValueError before anything runs
    parsed: list[_FunctionTest | None] = []
    for index, test in enumerate(tests, 1):  # validate every test first: a bad one is a caller bug
        if isinstance(test, str):
            if language_spec(language) != language_spec("python"):
                raise ValueError(f"test {index} is an assert string, which needs language='python'")
            parsed.append(_parse_function_test(test, index))
        elif isinstance(test, dict):
            _check_stdio_test(test, index)
            parsed.append(None)
        else:
            raise ValueError(f"test {index} has type {type(test).__name__}; {_SHAPES}")

    outcomes = []
    for test, fn_test in zip(tests, parsed, strict=True):
        if fn_test is None:
            outcomes.append(_run_stdio(sandbox, code, test, language, limits))
            continue
        nonce = secrets.token_hex(16)
        program = _harness(code, test, nonce=nonce, entry_point=entry_point, parsed=fn_test)
        result = sandbox.run(program, language="python", limits=limits)
        verdict = _read_harness(result, nonce, limits)
        outcomes.append(TestOutcome(
            test=test, passed=verdict.passed,
            input=fn_test.lhs_text if fn_test.lhs is not None else test,
            expected=fn_test.rhs_text, actual=None if verdict.passed else verdict.actual, error=verdict.error,
        ))
    return TestReport(outcomes)


def run_check(
    sandbox: Sandbox,
    code: str,
    check_code: str,
    *,
    entry_point: str | None = None,
    limits: Limits | None = None,
) -> TestOutcome:
    """Benchmark check: `code`, then `check_code` (HumanEval's `def check(candidate)`, or MBPP's setup and
    asserts), then `check(<entry_point>)` when check_code defines check. Passes only on positive proof."""
    limits = limits or Limits()
    try:
        tree = ast.parse(check_code)
    except SyntaxError as exc:
        raise ValueError(f"check_code is not valid Python ({exc.msg})") from exc
    defines_check = any(isinstance(n, ast.FunctionDef) and n.name == "check" for n in tree.body)
    if defines_check and not entry_point:
        raise ValueError("check_code defines check(candidate); pass entry_point so it can be called")
    nonce = secrets.token_hex(16)
    program = _harness(code, check_code, nonce=nonce, entry_point=entry_point, parsed=None,
                       call_check=defines_check)
    result = sandbox.run(program, language="python", limits=limits)
    verdict = _read_harness(result, nonce, limits)
    return TestOutcome(test=check_code, passed=verdict.passed, input=None, expected=None,
                       actual=verdict.actual, error=verdict.error)
