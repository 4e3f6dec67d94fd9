"""What the stdin/stdout benchmarks (APPS, xCodeEval, CodeContests) share: the note their statements
end with, and their tests in the sandbox's stdin/stdout shape."""

from __future__ import annotations

import ast
import contextlib
from collections.abc import Iterable
from typing import Any

from mapcoder_lite.evals.datasets.errors import DatasetError

STDIO_NOTE = ("Read the input from standard input and print the answer to standard output; the program "
              "is run once per test and its output must match exactly.")
FUNCTION_NOTE = ("The program is run with standard input holding the function's arguments, one per line, "
                 "each written as Python's str() writes it (strings without quotes, lists and numbers as "
                 "Python literals). Define the function, then read the arguments from standard input, call "
                 "it, and print its return value with print().")


def stdio_tests(items: Iterable[Any], what: str) -> list[dict[str, Any]]:
    """Tests as {"input": str, "output": [acceptable outputs]} (the sandbox's stdin/stdout shape)."""
    tests = []
    for item in items:
        if isinstance(item, str):  # one test stored as a literal string
            with contextlib.suppress(ValueError, SyntaxError):
                item = ast.literal_eval(item)
        if not isinstance(item, dict) or "input" not in item or "output" not in item:
            raise DatasetError(f"{what}: expected {{'input', 'output'}}, got {str(item)[:80]!r}")
        output = item["output"]
        tests.append({"input": str(item["input"]),
                      "output": output if isinstance(output, list) else [output]})
    return tests
