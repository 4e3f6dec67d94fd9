"""The verdict on one function test, decided outside the process of the program under test.

The program's process only answers questions with plain data (harness/candidate.py); nothing it
does there can say "passed". Two ways to judge, both on those answers:

* **direct**: a test made of setup statements and asserts of the shapes ``assert <expr> == <literal>``,
  ``assert <expr>`` and ``assert not <expr>`` (every sample test and MBPP/HumanEval-ET assert we have
  met). The program's process evaluates each ``<expr>``; this process compares the decoded value
  with the literal. One sandbox run.
* **checked**: anything else (a benchmark's ``check(candidate)``, an assert with a tolerance or a
  computed expected value). The test runs unchanged in a sandbox run of its own with the program's
  names bound to proxies (harness/checker.py), alternating with the program's process until every
  question it asks has an answer. Usually three sandbox runs.

Answers are decoded here with the strict codec before anything else reads them.
"""

from __future__ import annotations

import ast
import builtins
import secrets
import sys
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from mapcoder_lite.sandbox.base import Limits, RunResult, Sandbox, with_stderr
from mapcoder_lite.sandbox.harness import program
from mapcoder_lite.sandbox.harness.codec import NotData, clip_repr, decode, dumps, loads

# Outcome fields (actual output, errors) are stored clipped: they travel in graph state and results files.
MAX_FIELD_CHARS = 20_000
# A judge run that keeps meeting new questions is a test whose questions depend on the answers at
# every step; each round adds at least one answered question.
MAX_ROUNDS = 12


@dataclass
class Verdict:
    passed: bool
    actual: str | None  # repr of the decoded value, for a direct assert that failed on a value
    error: str | None


@dataclass(frozen=True)
class DirectAssert:
    expr: str  # evaluated by the program's process
    kind: str  # "eq" (== expected), "is" (a singleton: True, False, None), "true", "false"
    expected: Any = None
    message: str | None = None
    source: str = ""  # the assert as written, named in a batch's failure


# ---------------------------------------------------------------- reading a test


def direct_asserts(test: str) -> tuple[str, list[DirectAssert]] | None:
    """(setup source, asserts) when the test can be judged directly, else None."""
    tree = ast.parse(test)
    body = list(tree.body)
    split = next((i for i, node in enumerate(body) if isinstance(node, ast.Assert)), len(body))
    setup, asserts = body[:split], body[split:]
    # The setup statements run in the program's process, before the asserts, as they ran before them.
    if not asserts or not all(isinstance(node, ast.Assert) for node in asserts):
        return None
    checks = []
    for node in asserts:
        check = _direct(node)
        if check is None:
            return None
        checks.append(replace(check, source=ast.unparse(node)))
    return ast.unparse(ast.Module(body=setup, type_ignores=[])) if setup else "", checks


def _literal(node: ast.expr) -> tuple[bool, Any]:
    try:
        return True, ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return False, None


def _direct(node: ast.Assert) -> DirectAssert | None:
    message = None
    if node.msg is not None:  # shown when the assert fails; one that calls the program stays unevaluated
        ok, value = _literal(node.msg)
        message = str(value) if ok else ast.unparse(node.msg)
    test = node.test
    if (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Is)
            and isinstance(test.comparators[0], ast.Constant) and test.comparators[0].value in (True, False, None)):
        return DirectAssert(ast.unparse(test.left), "is", test.comparators[0].value, message)
    if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
        ok, expected = _literal(test.comparators[0])
        if ok:
            return DirectAssert(ast.unparse(test.left), "eq", expected, message)
        ok, expected = _literal(test.left)  # `assert 3 == f(x)`
        if ok:
            return DirectAssert(ast.unparse(test.comparators[0]), "eq", expected, message)
        return None
    # A truth test says nothing the program could not say itself (any program returning True passes
    # `assert f(x)`), so the program's process may take the truth of its own objects: `not not`.
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return DirectAssert(f"not not ({ast.unparse(test.operand)})", "false", None, message)
    if isinstance(test, ast.Compare | ast.BoolOp):
        return None  # a comparison or `and`/`or` of its own: the checker evaluates it as written
    return DirectAssert(f"not not ({ast.unparse(test)})", "true", None, message)


def names_of(code: str) -> tuple[set[str], set[str]]:
    """(names read, names bound) anywhere in code: a free name is read and never bound."""
    tree = ast.parse(code)
    read: set[str] = set()
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            bound.update(node.names)
    return read, bound


# ---------------------------------------------------------------- running


def _marks(result: RunResult, nonce: str) -> list[tuple[str, Any]]:
    """The harness's lines, in order; a line that is not valid wire JSON is dropped."""
    prefix = nonce + ":"
    marks = []
    for line in result.stdout.splitlines():
        if line.startswith(prefix):
            kind, _, payload = line[len(prefix):].partition(":")
            try:
                marks.append((kind, loads(payload)))
            except NotData:
                continue
    return marks


@dataclass
class _Answers:
    loaded: bool
    load_error: str | None
    answers: dict[int, dict[str, Any]]  # question index -> {"value": wire} | {"raised": {...}}
    stopped: str | None  # why the process ended before answering everything


def ask_program(
    sandbox: Sandbox, code: str, questions: list[dict[str, Any]], *, setup: str, entry_point: str | None,
    limits: Limits, prefix: str = "",
) -> _Answers:
    """The program's answers, each one checked against the wire format (a malformed one is no answer).
    `prefix` runs before the code in its namespace, as scoring runs a benchmark's prompt before it."""
    nonce = secrets.token_hex(16)
    spec = {"nonce": nonce, "prefix": prefix, "code": code, "setup": setup, "entry_point": entry_point,
            "questions": questions}
    result = sandbox.run(program("candidate", spec), language="python", limits=limits)
    loaded, load_error, answers = False, None, {}
    for kind, payload in _marks(result, nonce):
        if kind == "LOADED":
            loaded = True
        elif kind == "ERROR" and not loaded and load_error is None:
            load_error = str(payload)
        elif kind == "ANSWER" and loaded:
            answer = _checked_answer(payload, len(questions))
            if answer is not None and answer[0] not in answers:
                answers[answer[0]] = answer[1]
    stopped = None
    if len(answers) < len(questions) or not loaded:
        problem = result.describe_failure(limits)
        if problem is None:
            problem = (f"the program ended (exit code {result.exit_code}) before answering, "
                       "e.g. sys.exit() or os._exit()")
        stopped = with_stderr(problem, result)
    return _Answers(loaded, load_error, answers, stopped)


def _checked_answer(payload: Any, count: int) -> tuple[int, dict[str, Any]] | None:
    if not (isinstance(payload, list) and len(payload) == 2 and type(payload[0]) is int
            and 0 <= payload[0] < count and isinstance(payload[1], dict)):
        return None
    index, answer = payload
    if "value" in answer and len(answer) == 1:
        try:
            decode(answer["value"])
        except (NotData, RecursionError, ValueError):
            return None
        return index, answer
    raised = answer.get("raised")
    if (len(answer) == 1 and isinstance(raised, dict)
            and all(isinstance(raised.get(key), str) for key in ("type", "message", "traceback"))):
        return index, {"raised": {key: raised[key][:MAX_FIELD_CHARS] for key in ("type", "message", "traceback")}}
    return None


def _load_failure(answers: _Answers) -> Verdict | None:
    if answers.loaded:
        return None
    error = answers.load_error or answers.stopped or "the program did not load"
    if answers.load_error and answers.stopped and "timed out" in answers.stopped:
        error = f"{answers.stopped}\n{answers.load_error}"
    return Verdict(False, None, error[-MAX_FIELD_CHARS:])


def judge_direct(
    sandbox: Sandbox, code: str, setup: str, checks: list[DirectAssert], *, entry_point: str | None,
    limits: Limits, float_tolerance: float | None = None, prefix: str = "",
) -> Verdict:
    """Asserts with a literal expected value: the program evaluates, this process compares."""
    questions = [{"expr": check.expr} for check in checks]
    answers = ask_program(sandbox, code, questions, setup=setup, entry_point=entry_point, limits=limits,
                          prefix=prefix)
    failed = _load_failure(answers)
    if failed:
        return failed
    for index, check in enumerate(checks):
        answer = answers.answers.get(index)
        if answer is None:
            return Verdict(False, None, answers.stopped or "the program gave no answer")
        where = f"\nin: {check.source}" if len(checks) > 1 else ""
        if "raised" in answer:
            return Verdict(False, None, (answer["raised"]["traceback"] or answer["raised"]["type"]) + where)
        value = decode(answer["value"])
        if not _holds(check, value, float_tolerance):
            error = "AssertionError" + (f": {check.message}" if check.message else "") + where
            if where:
                error += f"\nactual: {clip_repr(value, 1000)}"
            return Verdict(False, clip_repr(value), error)
    return Verdict(True, None, None)


def _holds(check: DirectAssert, value: Any, float_tolerance: float | None) -> bool:
    # `value` is plain data (or an inert Handle, which equals no literal), so == and bool() here run
    # only Python's own code.
    if check.kind == "true":
        return value is True
    if check.kind == "false":
        return value is False
    if check.kind == "is":
        return value is check.expected
    if value == check.expected:
        return True
    return (float_tolerance is not None and type(check.expected) is float and type(value) in (int, float)
            and abs(value - check.expected) <= float_tolerance)


def judge_checked(
    sandbox: Sandbox, code: str, test: str, *, entry_point: str | None, setup: str = "", prelude: str = "",
    call_check: bool = False, float_tolerance: float | None = None, limits: Limits, prefix: str = "",
) -> Verdict:
    """Any test: it runs in its own process against proxies of the program (see the module doc)."""
    read, bound = names_of(prelude + "\n" + test)
    free = read - bound - set(dir(builtins)) - {"candidate"}
    modules = sorted(name for name in free if name in sys.stdlib_module_names)
    remote = sorted(free - set(modules) | ({entry_point} if entry_point else set()))
    base = {"prelude": prelude, "test": test, "call_check": call_check, "entry_point": entry_point,
            "remote": remote, "modules": modules, "float_tolerance": float_tolerance}
    questions: list[dict[str, Any]] = []
    mode = "discover"
    answers: _Answers | None = None
    ask = partial(ask_program, sandbox, code, setup=setup, entry_point=entry_point, limits=limits, prefix=prefix)
    for _ in range(MAX_ROUNDS):
        outcome = _run_checker(sandbox, base | {"mode": mode, "questions": questions,
                                                "answers": _answer_list(answers, len(questions))}, limits)
        if isinstance(outcome, Verdict):
            if answers is None:  # a test that asked nothing still needs a program that loads
                answers = ask([])
            return _load_failure(answers) or outcome
        known = {dumps(q) for q in questions}
        new = [q for q in outcome if dumps(q) not in known and not known.add(dumps(q))]
        if mode == "judge" and not new:
            return Verdict(False, None, "the test's checker asked again a question it has an answer to")
        questions, mode = questions + new, "judge"
        answers = ask(questions)
        failed = _load_failure(answers)
        if failed:
            return failed
    return Verdict(False, None, f"the test kept asking new questions after {MAX_ROUNDS} rounds")


def _answer_list(answers: _Answers | None, count: int) -> list[dict[str, Any]]:
    if answers is None:
        return []
    killed = {"killed": answers.stopped or "the program gave no answer"}
    return [answers.answers.get(index, killed) for index in range(count)]


def _run_checker(sandbox: Sandbox, spec: dict[str, Any], limits: Limits) -> Verdict | list[dict[str, Any]]:
    """The checker's verdict, or the full list of questions it asked."""
    nonce = secrets.token_hex(16)
    result = sandbox.run(program("checker", spec | {"nonce": nonce}), language="python", limits=limits)
    for kind, payload in _marks(result, nonce):
        if kind == "PASS":
            return Verdict(True, None, None)
        if kind == "FAIL":
            return Verdict(False, None, str(payload.get("error") if isinstance(payload, dict) else payload))
        if kind == "QUESTIONS" and isinstance(payload, list):
            return payload
    problem = result.describe_failure(limits) or "the test's checker ended without a verdict"
    return Verdict(False, None, with_stderr(f"the test itself failed to run: {problem}", result))
