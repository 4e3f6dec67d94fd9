"""Tolerant readers for agent answers: the one code-block extractor and the one XML reader.

Small models break formats (the problem MapCoder-Lite attacks), so these accept XML wrapped in code
fences, a missing root, unescaped ``<``/``&`` inside code, prose around the answer, and code blocks
with or without a language tag. Strict checks for training data live next to each role's prompt.
"""

from __future__ import annotations

import html
import re

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)
_CDATA = re.compile(r"<!\[CDATA\[(.*?)\]\]>", re.DOTALL)

# Tags of the language a block may carry, so a ```py block counts as Python.
_LANGUAGE_TAGS: dict[str, set[str]] = {
    "python": {"python", "python3", "py"},
    "cpp": {"cpp", "c++", "cc"},
    "java": {"java"},
    "javascript": {"javascript", "js"},
}


def code_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (language tag, body); an unclosed last fence runs to the end."""
    return [(tag.lower(), body) for tag, body in _FENCE.findall(text)]


def extract_code(text: str, language: str = "python") -> str | None:
    """The code of an answer: the last block tagged with `language`, else the last untagged block.

    The last block wins because agents (the debugger especially) write a plan with snippets first
    and the finished program at the end. Returns None when the answer has no fenced code.
    """
    tags = _LANGUAGE_TAGS.get(language.lower(), {language.lower()})
    blocks = code_blocks(text)
    for wanted in (tags, {""}):
        bodies = [body for tag, body in blocks if tag in wanted and body.strip()]
        if bodies:
            return bodies[-1].strip("\n")
    return None


def text_before_code(text: str) -> str:
    """What precedes the first code fence (the debugger's revised plan)."""
    return text.split("```", 1)[0].strip()


def _clean(value: str) -> str:
    value = _CDATA.sub(lambda m: m.group(1), value)
    # Models escape some code (&lt;) and not the rest; unescape so both read as the source.
    return html.unescape(value).strip()


def xml_tags(text: str, tag: str) -> list[str]:
    """Inner text of every ``<tag>…</tag>`` in `text`, unescaped; tolerant of what surrounds them.

    Reading by regular expression (not an XML parser) is what makes unescaped ``<`` in code work,
    and it reads XML the same whether or not a code fence or prose surrounds it. A last element
    left unclosed (an answer cut at max_tokens) is read to the end of the text.
    """
    body = text
    closed = re.findall(rf"<{tag}(?:\s[^>]*)?>(.*?)</{tag}\s*>", body, re.DOTALL | re.IGNORECASE)
    if closed:
        return [_clean(v) for v in closed]
    unclosed = re.search(rf"<{tag}(?:\s[^>]*)?>(.*)\Z", body, re.DOTALL | re.IGNORECASE)
    return [_clean(unclosed.group(1))] if unclosed else []


def xml_tag(text: str, tag: str) -> str | None:
    """The first ``<tag>`` element's text, or None."""
    found = xml_tags(text, tag)
    return found[0] if found else None
