"""Baselines on the coder's model: `direct` (one answer with the code) and `cot` (reason first).

They see exactly what the graph sees (statement, samples, how the program is run) so that a
comparison with MapCoder measures the agents, not the prompt's information. Their answers are the
coder role's, read by its parser (`mapcoder_lite.prompts.coder.parse`).
"""

from __future__ import annotations

from typing import Any

from mapcoder_lite.prompts.coder import CODE_CHARS
from mapcoder_lite.prompts.coder import answer_grammar as code_only
from mapcoder_lite.prompts.common import Message, chat, io_contract, problem_section
from mapcoder_lite.prompts.grammar import BLANK, code_block, field, grammar

SYSTEM = """You are an expert competitive programmer. You write correct, efficient code."""

DIRECT = """{problem}

{contract}
Answer with the complete code in a single ```{fence} code block and no other text."""

COT = """{problem}

{contract}
First think step by step: restate what is asked, work through a sample by hand, and write the
algorithm as numbered steps. Then give the complete code in a single ```{fence} code block at the end
of your answer."""


def build_messages(
    problem: str,
    sample_tests: list[Any],
    language: str,
    entry_point: str | None,
    *,
    cot: bool = False,
) -> list[Message]:
    user = (COT if cot else DIRECT).format(
        problem=problem_section(problem, sample_tests),
        contract=io_contract(sample_tests, entry_point, language),
        fence=language.lower(),
    )
    return chat(SYSTEM, user)


REASONING_CHARS = 3000  # cot's reasoning before the code: a restatement, one sample by hand, the steps


def answer_grammar(language: str = "python", k: int = 3, *, cot: bool = False) -> str:
    """`direct`: the coder's format (one code block and nothing else). `cot`: the reasoning, free text
    without backticks, then one code block, which ends the answer."""
    if not cot:
        return code_only(language, k)
    return grammar(f'root ::= {field("`", REASONING_CHARS)} "\\n\\n" {code_block(language, CODE_CHARS)}', BLANK)
