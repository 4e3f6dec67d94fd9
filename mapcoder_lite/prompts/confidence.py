"""Confidence: score a plan 0-100 for whether it solves the problem."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mapcoder_lite.prompts.common import Message, chat, language_name
from mapcoder_lite.prompts.grammar import BLANK, element, grammar
from mapcoder_lite.prompts.parsing import xml_tag

SYSTEM = """You review solution plans for programming problems.
You answer only in the XML format the user asks for."""

# The format in words, with nothing to copy: the 0.5B model copied capitalised placeholders back
# ("WHY THE PLAN DOES OR DOES NOT SOLVE THE PROBLEM", and their negative wording pulled its scores
# down), and it copied a filled-in example answer whole (117 of 117 answers on MBPP validation gave
# the example's explanation and score). Described in words, its scores varied (0-100 over 24 plans
# of the same split). The grammar holds the format where the server enforces it.
USER = """## Problem
{problem}

## Plan ({language})
{plan}

Check the plan step by step against the problem: does it compute what is asked, for every input the
problem allows? Write your reasoning inside <explanation></explanation>, then your confidence that the
plan, implemented faithfully, solves the problem, as a whole number from 0 (it surely fails) to 100 (it
surely works), inside <confidence></confidence>. Wrap both in <root></root> and write nothing else."""

# A score is a bare whole number, optionally written as a percentage or out of 100. Anything else
# (small models often copy the placeholder text back) is a format failure, not a score of 0.
_SCORE = re.compile(r"^\s*(\d{1,3})\s*(?:%|/\s*100)?\s*$")


@dataclass
class Confidence:
    confidence: int
    explanation: str


def build_messages(problem: str, plan: str, language: str) -> list[Message]:
    return chat(SYSTEM, USER.format(problem=problem.strip(), plan=plan.strip(), language=language_name(language)))


def parse(text: str, language: str = "python") -> Confidence | None:
    """The score, clamped to 0-100; None when the answer has no readable integer score."""
    match = _SCORE.match(xml_tag(text, "confidence") or "")
    if match is None:
        return None
    return Confidence(confidence=min(100, int(match.group(1))), explanation=xml_tag(text, "explanation") or "")


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    body = text.strip()
    raw = xml_tag(body, "confidence")
    return (
        body.startswith("<root>")
        and body.endswith("</root>")
        and bool(xml_tag(body, "explanation"))
        and raw is not None
        and raw.strip().isdigit()
        and 0 <= int(raw.strip()) <= 100
    )


# A reason, not an essay: short enough that the role's token budget (roles.py) never cuts it.
EXPLANATION_CHARS = 600


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The USER format: an explanation first (the score follows from it), then a whole number 0-100."""
    return grammar(
        f'root ::= "<root>\\n" {element("explanation", EXPLANATION_CHARS)} "\\n<confidence>" score'
        ' "</confidence>\\n</root>"',
        'score ::= "100" | [1-9] [0-9] | [0-9]',
        BLANK,
    )
