"""Planning agent: one plan for the problem, written from one recalled example."""

from __future__ import annotations

import re
from typing import Any

from mapcoder_lite.prompts.common import Message, chat, language_name, problem_section
from mapcoder_lite.prompts.grammar import BLANK, field, grammar

SYSTEM = """You are an expert competitive programmer who writes clear, correct solution plans.
You answer with the plan only: numbered steps in plain text, no code."""

EXAMPLE = """Here is a solved problem that resembles the one to solve.

## Example problem
{description}

## Example plan
{planning}
"""

# A bank's exemplar whose plan no run recorded: its verified solution stands in for the plan (the
# paper's prompt shows a recalled example's plan only, so recalled examples keep EXAMPLE).
EXAMPLE_SOLUTION = """Here is a solved problem that resembles the one to solve.

## Example problem
{description}

## Example solution
```{fence}
{code}
```
"""

USER = """{example}
## Algorithm to consider
{algorithm}

Write a step-by-step plan that solves the following problem in {language}.

{problem}

Give only the plan, as numbered steps. No code and no other text."""


def build_messages(
    problem: str,
    sample_tests: list[Any],
    language: str,
    example: dict[str, str] | None,
    algorithm: str,
) -> list[Message]:
    if not example:
        shown = "(No example problem is available.)\n"
    elif example.get("source") == "bank" and not example.get("planning", "").strip():
        shown = EXAMPLE_SOLUTION.format(description=example["description"], code=example["code"].strip(),
                                        fence=language)
    else:
        shown = EXAMPLE.format(**example)
    user = USER.format(
        example=shown,
        algorithm=algorithm.strip() or "(none named)",
        language=language_name(language),
        problem=problem_section(problem, sample_tests),
    )
    return chat(SYSTEM, user)


def parse(text: str, language: str = "python") -> str | None:
    """The plan without a leading heading; None when the answer is empty."""
    plan = re.sub(r"^\s*#*\s*(planning|plan)\s*:?\s*\n", "", text.strip(), flags=re.IGNORECASE)
    return plan.strip() or None


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    """A trained planner answers with a plan and no code block."""
    return parse(text) is not None and "```" not in text


# A plan's bound in characters (about 300 tokens; untuned Qwen2.5-Coder-0.5B's plans on MBPP's
# validation split: median 86 tokens, 90th percentile 285, decoded without a grammar). The plan is free
# text without backticks, not a grammar of numbered lines: with lines of bounded width the model, made to
# break a long line, went on with a new step each time and wrote 5 times the tokens (median 431) of
# repeated steps, all up to the last one allowed.
PLAN_CHARS = 1200


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The plan as bounded text without a code block (no backtick at all, so no code fence), ending with
    a newline. The newline costs nothing to the plan (parse strips it) and is what keeps decoding cheap:
    with the bounded text as the grammar's last element, xgrammar took 60 ms of token-mask computation
    per generated token (Qwen2.5-Coder-0.5B's plans from MBPP validation), about 30 times the model's
    own step on this CPU and computed for every plan in the batch; followed by "\n", 0.6 ms
    (`python benchmarks/grammar_masks.py`)."""
    return grammar(f'root ::= {field("`", PLAN_CHARS)} "\\n"', BLANK)
