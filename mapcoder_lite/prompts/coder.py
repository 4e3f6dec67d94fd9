"""Coding agent: turn a plan into a program."""

from __future__ import annotations

from typing import Any

from mapcoder_lite.prompts.common import Message, chat, io_contract, problem_section
from mapcoder_lite.prompts.grammar import BLANK, code_block, grammar
from mapcoder_lite.prompts.parsing import code_blocks, extract_code

SYSTEM = """You are an expert competitive programmer. You write correct, efficient code.
You answer with one fenced code block and nothing else."""

USER = """{problem}

## Algorithm
{algorithm}

## Plan
{plan}

Implement the plan. {contract}
Answer with the complete code in a single ```{fence} code block and no other text."""


def build_messages(
    problem: str,
    sample_tests: list[Any],
    language: str,
    plan: str,
    algorithm: str,
    entry_point: str | None,
) -> list[Message]:
    user = USER.format(
        problem=problem_section(problem, sample_tests),
        algorithm=algorithm.strip() or "(none named)",
        plan=plan.strip() or "(no plan: solve the problem directly)",
        contract=io_contract(sample_tests, entry_point, language),
        fence=language.lower(),
    )
    return chat(SYSTEM, user)


def compiles(code: str, language: str) -> bool:
    """Whether unfenced text is a program; only checkable (without running it) for Python."""
    if language.lower() != "python" or not code.strip():
        return False
    try:
        compile(code, "<answer>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def parse(text: str, language: str = "python") -> str | None:
    """The fenced code; else the whole answer if it compiles as-is; else None (a failed attempt)."""
    code = extract_code(text, language)
    if code is not None:
        return code
    return text.strip() if compiles(text, language) else None


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    """A trained coder answers with exactly one code block in the target language."""
    blocks = code_blocks(text)
    return len(blocks) == 1 and extract_code(text, language) is not None


# Longer than any program a benchmark problem needs (about 1,000-1,300 tokens); a model repeating
# itself must close the block.
CODE_CHARS = 4000


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """One ```language block and nothing else: the answer ends when the fence closes."""
    return grammar(f"root ::= {code_block(language, CODE_CHARS)}", BLANK)
