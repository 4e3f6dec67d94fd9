"""Retrieval agent: recall k relevant example problems and name the algorithm behind the target."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from mapcoder_lite.prompts.common import Message, chat, language_name
from mapcoder_lite.prompts.grammar import BLANK, element, grammar
from mapcoder_lite.prompts.parsing import extract_code, xml_tag, xml_tags

SYSTEM = """You are an expert competitive programmer with a wide memory of solved problems.
You answer only in the XML format the user asks for."""

# The format in words, with nothing to copy: the 0.5B model copied placeholder texts into the fields,
# and a filled-in example element whole (141 of 144 recalled descriptions on MBPP validation were the
# example's, so the three planners got one example thrice). Described in words: 27 distinct of 36 on
# 12 problems of the same split. The grammar holds the format where the server enforces it.
USER = """Here is a programming problem:

{problem}

Recall {k} problems that are relevant to it but different from it and from each other. For each one,
describe it, write {language} code that solves it, reasoning step by step, and write the plan you
followed. Then name the algorithm the problem above needs (brute force, greedy, dynamic programming,
binary search, graph search, divide and conquer, backtracking, math, and so on) and write a short,
general tutorial on that algorithm; no code in the tutorial.

Answer in XML and nothing else: one <root> element holding {k} <problem> elements and then one
<algorithm> element. Each <problem> holds a <description> of the recalled problem, its <code> and its
<planning>, in that order. The <algorithm> holds the algorithm's name and its tutorial."""


@dataclass
class Retrieval:
    examples: list[dict[str, str]] = field(default_factory=list)
    algorithm: str = ""


def build_messages(problem: str, language: str, k: int) -> list[Message]:
    return chat(SYSTEM, USER.format(problem=problem.strip(), k=k, language=language_name(language)))


def parse(text: str, language: str = "python") -> Retrieval | None:
    """Examples that carry a description or a plan, and the algorithm; None when nothing is usable."""
    examples: list[dict[str, str]] = []
    for block in xml_tags(text, "problem"):
        code = xml_tag(block, "code") or ""
        example = {
            "description": xml_tag(block, "description") or "",
            # Models often fence the code inside <code>; keep the program, not the fence.
            "code": extract_code(code, language) or code,
            "planning": xml_tag(block, "planning") or "",
        }
        if example["description"] or example["planning"]:
            examples.append(example)
    algorithm = xml_tag(text, "algorithm") or ""
    if not examples:
        return None
    return Retrieval(examples=examples, algorithm=algorithm)


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    """The exact format a trained retriever must produce (used to filter training data)."""
    body = text.strip()
    if not (body.startswith("<root>") and body.endswith("</root>")):
        return False
    if len(re.findall(r"<root>", body)) != 1:
        return False
    problems = xml_tags(body, "problem")
    if not problems or (k is not None and len(problems) != k):
        return False
    fields_present = all(all(xml_tag(p, tag) for tag in ("description", "code", "planning")) for p in problems)
    return fields_present and bool(xml_tag(body, "algorithm"))


# Field bounds in characters: room for a recalled problem, its program and plan, while a model that
# repeats the problem inside a field must close it and go on. The recalled code is the shortest: the
# planner is shown an example's description and plan, not its code (about 15 lines fit).
FIELD_CHARS = {"description": 400, "code": 600, "planning": 600, "algorithm": 1000}


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The USER format exactly: one root, exactly k problems with their three fields, the algorithm."""
    if k < 1:
        raise ValueError(f"the retriever recalls at least one problem (k={k})")
    # Ten bounded fields in one grammar: written in chunks, 2 ms of token masks per token against 15
    # (grammar.UNROLLED_CHARS).
    def text(tag: str) -> str:
        return element(tag, FIELD_CHARS[tag], chunked=True)

    fields = " ".join(f'{text(tag)} "\\n"' for tag in ("description", "code", "planning"))
    return grammar(
        f'root ::= "<root>\\n" problem{{{k}}} {text("algorithm")} "\\n</root>"',
        f'problem ::= "<problem>\\n" {fields} "</problem>\\n"',
        BLANK,
    )
