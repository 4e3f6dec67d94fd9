"""Confidence: score a plan 0-100 for whether it solves the problem."""

from __future__ import annotations

import re
from dataclasses import dataclass

from mapcoder_lite.prompts.common import Message, chat, language_name
from mapcoder_lite.prompts.grammar import BLANK, element, grammar
from mapcoder_lite.prompts.parsing import xml_tag

SYSTEM = """You review solution plans for programming problems.
You answer only in the XML format the user asks for."""

# A filled-in answer rather than placeholders: a small model copied capitalised placeholders back
# ("WHY THE PLAN DOES OR DOES NOT SOLVE THE PROBLEM"), and their negative wording pulled its scores
# down. The example is about another problem, so nothing in it can be copied as an answer.
USER = """## Problem
{problem}

## Plan ({language})
{plan}

Check the plan step by step against the problem: does it compute what is asked, for every input the
problem allows? Then say how confident you are that the plan, implemented faithfully, solves it: a
whole number from 0 (it surely fails) to 100 (it surely works).

Answer in this XML format and nothing else. An answer about another plan, for illustration:
<root>
<explanation>The plan sorts the numbers and returns the middle one, which is the median asked for, but
for an even count it should average the two middle numbers and it does not.</explanation>
<confidence>20</confidence>
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
