"""Confidence: score a plan 0-100 for whether it solves the problem."""

from __future__ import annotations

from dataclasses import dataclass

from mapcoder_lite.prompts.common import Message, chat, language_name
from mapcoder_lite.prompts.parsing import first_integer, xml_tag

SYSTEM = """You are a strict reviewer of solution plans for programming problems.
You answer only in the XML format the user asks for."""

USER = """## Problem
{problem}

## Plan ({language})
{plan}

Would this plan, implemented faithfully, solve the problem, including its edge cases?
Answer with exactly this XML and nothing else:
<root>
<explanation>why the plan does or does not solve the problem</explanation>
<confidence>an integer from 0 to 100</confidence>
</root>"""


@dataclass
class Confidence:
    confidence: int
    explanation: str


def build_messages(problem: str, plan: str, language: str) -> list[Message]:
    return chat(SYSTEM, USER.format(problem=problem.strip(), plan=plan.strip(), language=language_name(language)))


def parse(text: str) -> Confidence | None:
    """The score, clamped to 0-100; None when the answer has no readable integer score."""
    raw = xml_tag(text, "confidence")
    score = first_integer(raw) if raw is not None else None
    if score is None:
        return None
    return Confidence(confidence=max(0, min(100, score)), explanation=xml_tag(text, "explanation") or "")


def is_strict(text: str) -> bool:
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
