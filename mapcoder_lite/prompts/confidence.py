"""Confidence: score a plan 0-100 for whether it solves the problem."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mapcoder_lite.prompts.common import Message, chat, language_name
from mapcoder_lite.prompts.grammar import BLANK, element, grammar
from mapcoder_lite.prompts.parsing import xml_tag

SYSTEM = """You are a strict reviewer of solution plans for programming problems.
You answer only in the XML format the user asks for."""

USER = """## Problem
{problem}

## Plan ({language})
{plan}

Would this plan, implemented faithfully, solve the problem, including its edge cases?
Answer with exactly this XML and nothing else, replacing each CAPITALISED placeholder:
<root>
<explanation>WHY THE PLAN DOES OR DOES NOT SOLVE THE PROBLEM</explanation>
<confidence>YOUR SCORE: ONE WHOLE NUMBER, 0 = SURELY WRONG, 100 = SURELY RIGHT</confidence>
</root>"""

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


EXPLANATION_CHARS = 1000


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The USER format: an explanation first (the score follows from it), then a whole number 0-100."""
    return grammar(
        f'root ::= "<root>\\n" {element("explanation", EXPLANATION_CHARS)} "\\n<confidence>" score'
        ' "</confidence>\\n</root>"',
        'score ::= "100" | [1-9] [0-9] | [0-9]',
        BLANK,
    )
