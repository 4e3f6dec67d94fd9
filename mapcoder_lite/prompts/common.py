"""Pieces every role's prompt shares: how a problem, its samples and its language are shown."""

from __future__ import annotations

from typing import Any

Message = dict[str, str]

LANGUAGE_NAMES: dict[str, str] = {"python": "Python 3", "cpp": "C++17", "java": "Java", "javascript": "JavaScript"}


def language_name(language: str) -> str:
    return LANGUAGE_NAMES.get(language.lower(), language)


def is_stdio(sample_tests: list[Any]) -> bool:
    """Stdin/stdout problems have {"input", "output"} samples; function problems have asserts."""
    return any(isinstance(test, dict) for test in sample_tests)


def format_samples(sample_tests: list[Any]) -> str:
    """Samples as the agents see them: assert lines, or numbered input/output pairs."""
    if not sample_tests:
        return "(no sample tests given)"
    lines: list[str] = []
    for number, test in enumerate(sample_tests, start=1):
        if isinstance(test, dict):
            output = test.get("output", "")
            if isinstance(output, list):  # several acceptable outputs: show the first
                output = output[0] if output else ""
            lines.append(f"Sample {number}\nInput:\n{test.get('input', '')}\nOutput:\n{output}")
        else:
            lines.append(str(test))
    return "\n".join(lines) if not is_stdio(sample_tests) else "\n\n".join(lines)


def io_contract(sample_tests: list[Any], entry_point: str | None, language: str) -> str:
    """The one sentence that tells the coder how its program is run against the tests."""
    if is_stdio(sample_tests):
        return (
            f"Write a complete {language_name(language)} program that reads the input from standard "
            "input and prints the answer to standard output, and nothing else."
        )
    target = f"`{entry_point}`" if entry_point else "the function the problem asks for"
    return (
        f"Write {language_name(language)} code that defines {target} so that the sample asserts pass; "
        "do not read input and do not print."
    )


def problem_section(problem: str, sample_tests: list[Any]) -> str:
    return f"## Problem\n{problem.strip()}\n\n## Sample tests\n{format_samples(sample_tests)}"


def chat(system: str, user: str) -> list[Message]:
    return [{"role": "system", "content": system.strip()}, {"role": "user", "content": user.strip()}]
