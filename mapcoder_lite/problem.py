"""Reading a problem: the graph's input from JSON, or from a Markdown / plain-text statement."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from mapcoder_lite.graph.state import InputState
from mapcoder_lite.prompts.parsing import code_blocks
from mapcoder_lite.sandbox import validate_tests

_ASSERT = re.compile(r"^\s*(assert\s+.+?)\s*$", re.MULTILINE)
_ENTRY = re.compile(r"assert\s+(?:not\s+)?\(?\s*([A-Za-z_]\w*)\s*\(")
_LABEL = re.compile(
    r"^[ \t]*(?:#+[ \t]*)?(?:\*\*)?(?:sample|example)?[ \t]*(input|output)[ \t]*\d*[ \t]*:?(?:\*\*)?[ \t]*:?[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)


class ProblemError(ValueError):
    """A problem file the graph cannot use; the message says what is wrong and how to fix it."""


def check_problem(data: dict[str, Any], source: str = "problem") -> InputState:
    """Validate the graph's input keys and fill the optional ones."""
    if not isinstance(data.get("problem"), str) or not data["problem"].strip():
        raise ProblemError(f"{source}: 'problem' must be a non-empty string with the statement")
    tests = data.get("sample_tests")
    if not isinstance(tests, list):
        raise ProblemError(f"{source}: 'sample_tests' must be a list (assert strings or input/output objects)")
    for index, test in enumerate(tests):
        ok_assert = isinstance(test, str) and test.strip().startswith("assert")
        ok_io = isinstance(test, dict) and "input" in test and "output" in test
        if not (ok_assert or ok_io):
            raise ProblemError(
                f"{source}: sample_tests[{index}] = {test!r} is neither an 'assert ...' string "
                "nor an object with 'input' and 'output'"
            )
    try:  # every test must run (an assert that is not Python would fail only after the model calls)
        validate_tests(tests, data.get("language") or "python")
    except ValueError as exc:
        raise ProblemError(f"{source}: {exc}") from None
    entry_point = data.get("entry_point")
    if entry_point is None and any(isinstance(t, str) for t in tests):
        match = _ENTRY.search(next(t for t in tests if isinstance(t, str)))
        entry_point = match.group(1) if match else None
    return InputState(
        problem=data["problem"],
        sample_tests=tests,
        entry_point=entry_point,
        language=data.get("language") or "python",
    )


def _block_after(text: str, start: int, end: int) -> str:
    """The sample text after a label: a fenced block if one follows, else the lines up to `end`."""
    segment = text[start:end]
    blocks = code_blocks(segment) if segment.lstrip().startswith("```") else []
    if blocks:
        return blocks[0][1]
    return segment.strip("\n").rstrip() + "\n"


def parse_statement(text: str, source: str = "problem") -> InputState:
    """A Markdown or plain-text statement: samples are assert lines, or Input/Output sections."""
    asserts = _ASSERT.findall(text)
    if asserts:
        return check_problem({"problem": text, "sample_tests": asserts}, source)
    labels = list(_LABEL.finditer(text))
    # "Sample Input" labels, where present, are the samples; bare "Input" ones describe the format.
    samples = [label for label in labels if re.search(r"sample|example", label.group(0), re.IGNORECASE)]
    labels = samples or labels
    inputs: list[tuple[int, str]] = []
    outputs: list[str] = []
    for position, label in enumerate(labels):
        end = labels[position + 1].start() if position + 1 < len(labels) else len(text)
        block = _block_after(text, label.end() + 1, end)
        if label.group(1).lower() == "input":
            inputs.append((label.start(), block))
        else:
            outputs.append(block)
    # Statements often have "Input"/"Output" sections describing the format before the samples:
    # the samples are the last len(outputs) inputs, and the statement is everything before them.
    if outputs and len(inputs) >= len(outputs):
        inputs = inputs[len(inputs) - len(outputs) :]
        statement = text[: inputs[0][0]].strip()
        tests = [{"input": i, "output": o} for (_, i), o in zip(inputs, outputs, strict=True)]
        return check_problem({"problem": statement or text, "sample_tests": tests}, source)
    raise ProblemError(
        f"{source}: found no sample tests. Add 'assert f(...) == ...' lines for a function problem, or "
        "'Input' and 'Output' sections (each followed by a ``` block) for a stdin/stdout problem, "
        "or write the problem as JSON with the keys problem, sample_tests, entry_point, language."
    )


def load_problem(path: str | Path) -> InputState:
    """A problem file: JSON with the graph's input keys, or a Markdown / plain-text statement."""
    path = Path(path)
    if not path.is_file():
        raise ProblemError(f"{path}: no such file")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProblemError(f"{path}: not a text file (byte {exc.start} is not UTF-8); a problem file is JSON, "
                           "Markdown or plain text") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProblemError(f"{path}: invalid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise ProblemError(f"{path}: the JSON must be an object with problem and sample_tests")
        return check_problem(data, str(path))
    return parse_statement(text, str(path))
