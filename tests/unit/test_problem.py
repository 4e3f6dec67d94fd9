"""Problem files: JSON and Markdown statements become the graph's input, or a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mapcoder_lite.problem import ProblemError, load_problem

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_markdown_with_asserts_is_a_function_problem() -> None:
    problem = load_problem(EXAMPLES / "two_sum.md")
    assert problem["entry_point"] == "two_sum"
    assert problem["sample_tests"][0] == "assert two_sum([2, 7, 11, 15], 9) == [0, 1]"
    assert len(problem["sample_tests"]) == 3 and problem["language"] == "python"


def test_markdown_with_sample_sections_is_a_stdio_problem() -> None:
    problem = load_problem(EXAMPLES / "max_subarray.md")
    assert problem["sample_tests"] == [
        {"input": "5\n1 -2 3 4 -1\n", "output": "7\n"},
        {"input": "3\n-5 -1 -8\n", "output": "-1\n"},
    ]
    assert problem["entry_point"] is None
    # The format description stays in the statement; the samples are not repeated in it.
    assert "The first line contains n" in problem["problem"] and "Sample Input" not in problem["problem"]


def test_plain_text_input_output_labels() -> None:
    text = "Print the sum of two numbers.\n\nInput:\n1 2\n\nOutput:\n3\n"
    path = Path(__file__).parent / "_tmp_problem.txt"
    try:
        path.write_text(text)
        assert load_problem(path)["sample_tests"] == [{"input": "1 2\n", "output": "3\n"}]
    finally:
        path.unlink()


def test_json_problem(tmp_path: Path) -> None:
    problem = load_problem(EXAMPLES / "two_sum.json")
    assert problem["entry_point"] == "two_sum" and len(problem["sample_tests"]) == 2
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"problem": "x", "sample_tests": [42]}))
    with pytest.raises(ProblemError, match=r"sample_tests\[0\] = 42 is neither"):
        load_problem(bad)
    bad.write_text("{not json")
    with pytest.raises(ProblemError, match="invalid JSON"):
        load_problem(bad)


def test_statement_without_samples_says_how_to_add_them(tmp_path: Path) -> None:
    path = tmp_path / "p.md"
    path.write_text("Sort a list.")
    with pytest.raises(ProblemError, match="found no sample tests"):
        load_problem(path)
    with pytest.raises(ProblemError, match="no such file"):
        load_problem(tmp_path / "missing.md")
