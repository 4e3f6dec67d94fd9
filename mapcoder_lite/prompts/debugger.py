"""Debugging agent: read the failing tests, revise the plan, and fix the code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mapcoder_lite.prompts.coder import CODE_CHARS
from mapcoder_lite.prompts.coder import parse as parse_code
from mapcoder_lite.prompts.common import Message, chat, io_contract, problem_section
from mapcoder_lite.prompts.grammar import BLANK, code_block, field, grammar
from mapcoder_lite.prompts.parsing import code_blocks, text_before_code
from mapcoder_lite.prompts.planner import PLAN_CHARS

SYSTEM = """You are an expert competitive programmer who finds and fixes bugs.
You answer with a corrected plan followed by the corrected code in one fenced code block."""

USER = """{problem}

## Algorithm
{algorithm}

## Plan
{plan}

## Code that fails the sample tests
```{fence}
{code}
```

## Test report
{report}

Find why the code fails. {contract}
Answer with the corrected plan as numbered steps, then the complete corrected code in a single
```{fence} code block."""


@dataclass
class Revision:
    plan: str
    code: str


def build_messages(
    problem: str,
    sample_tests: list[Any],
    language: str,
    plan: str,
    code: str,
    report: str,
    algorithm: str,
    entry_point: str | None,
) -> list[Message]:
    user = USER.format(
        problem=problem_section(problem, sample_tests),
        algorithm=algorithm.strip() or "(none named)",
        plan=plan.strip() or "(no plan)",
        code=code.strip() or "# (no code was produced)",
        report=report.strip(),
        contract=io_contract(sample_tests, entry_point, language),
        fence=language.lower(),
    )
    return chat(SYSTEM, user)


def parse(text: str, language: str = "python") -> Revision | None:
    """The revised plan (text before the code) and the code; None when no usable code came back."""
    code = parse_code(text, language)
    if code is None:
        return None
    return Revision(plan=text_before_code(text), code=code)


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    """A trained debugger writes a plan, then exactly one code block."""
    return bool(text_before_code(text)) and len(code_blocks(text)) == 1 and parse(text, language) is not None


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The asked format: the corrected plan (bounded text, as the planner's), then one code block."""
    return grammar(f'root ::= {field("`", PLAN_CHARS)} {code_block(language, CODE_CHARS)}', BLANK)
