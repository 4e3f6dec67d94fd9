"""Scripted answers for the graph's agents, shared by the graph, composition and example-app tests:
a small function problem, programs that pass all, half or none of its samples, and the agents' formats."""

from __future__ import annotations

from collections.abc import Callable

from tests.scripted import ScriptedChatModel

FUNCTION_PROBLEM = {
    "problem": 'def add(a, b):\n    """Return the sum of a and b."""\n',
    "sample_tests": ["assert add(1, 2) == 3", "assert add(-1, 1) == 0"],
    "entry_point": "add",
    "language": "python",
}
GOOD = "```python\ndef add(a, b):\n    return a + b\n```"
HALF = "```python\ndef add(a, b):\n    return 3\n```"  # passes the first sample only
BAD = "```python\ndef add(a, b):\n    return a - b - 99\n```"


def retrieval(*markers: str) -> str:
    problems = "".join(
        f"<problem><description>{m} example</description><code>x = 1 if 1 < 2 else 0</code>"
        f"<planning>plan from {m}</planning></problem>"
        for m in markers
    )
    return f"<root>{problems}<algorithm>Arithmetic</algorithm></root>"


def by_marker(table: dict[str, str], default: str = "") -> Callable[[str], str]:
    """Answer with the value of the first key found in the prompt."""

    def script(prompt: str) -> str:
        for key, answer in table.items():
            if key in prompt:
                return answer
        return default

    return script


def confidence(score: int) -> str:
    return f"<root><explanation>reasons</explanation><confidence>{score}</confidence></root>"


def prompts(models: dict[str, ScriptedChatModel]) -> int:
    """How many prompts the scripted models were given: the graph's model calls."""
    return sum(len(model.prompts) for model in models.values())
