"""Building blocks of the answer grammars that vLLM enforces while decoding (structured outputs).

Each role's grammar is in its prompt module beside the prompt and the parser; these are the pieces
they share, as rules of xgrammar's EBNF (GBNF-like, with ``{m,n}`` repetition). A grammar fixes the
envelope of an answer (tags, their order and count, the code fence, a score's range) and bounds
every free-text field, so a small model caught in a repetition loop is made to close the field and
go on instead of writing until ``max_tokens``; what it writes inside a field is its own.

Every grammar accepts only answers that the role's ``is_strict`` accepts; the unit tests check it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

# A role's grammar for an answer in `language` with `k` retrieved examples (only the retriever's
# depends on k; the code fences' on the language).
Grammar = Callable[[str, int], str]

# Blank space allowed where the parsers strip it, bounded so that it cannot run on either.
BLANK = "blank ::= [ \\t\\n]{0,8}"

# The text of one XML element: not blank (is_strict wants every field filled) and without anything
# the tolerant reader (`parsing.xml_tags`) would take for a tag of the answer: no "</" at all, so an
# element ends only at its own closing tag, and no opening tag of the format ("<code>", "<CODE x>"),
# so a field cannot hold a second element. Other "<" stay (code compares with it, C++ writes
# `vector<int>` and "<<"), up to three in a row. An `xml_piece` is one to about twelve characters.
def xml_piece(tags: Sequence[str], name: str = "xml_piece", exclude: str = "") -> str:
    """Rules for `name`, one piece of an element's text in an answer with these tags, never holding
    a character of `exclude` (plain characters only, e.g. "`")."""
    for tag in tags:
        if not re.fullmatch(r"[a-z]+", tag):
            raise ValueError(f"tag names are lowercase letters: {tag!r}")
    if not re.fullmatch(r"[^\\\]\[^\s-]*", exclude):
        raise ValueError(f"exclude holds plain characters only: {exclude!r}")
    rules = [f'{name} ::= [^<{exclude}] | "<"{{1,3}} {name}_lt']
    _after(rules, f"{name}_lt", "", tags, exclude)
    return "\n".join(rules)


def _after(rules: list[str], name: str, prefix: str, tags: Sequence[str], exclude: str) -> None:
    """Rule `name`: what may follow "<" + `prefix` (a prefix of some tag) without opening a tag."""
    nexts = sorted({tag[len(prefix)] for tag in tags if tag.startswith(prefix) and len(tag) > len(prefix)})
    # A whole tag name may go on only as a longer word: not with blank space or ">".
    stops = " \\t\\n\\r>" if prefix in tags else ""
    banned = "".join(c + c.upper() for c in nexts) + ("/" if not prefix else "") + stops + exclude
    choices = [f"[^<{banned}]"]
    for char in nexts:
        child = f"{name}_{char}"
        choices.append(f"[{char}{char.upper()}] {child}")
        _after(rules, child, prefix + char, tags, exclude)
    rules.append(f"{name} ::= " + " | ".join(choices))


# Text that cannot open or close a code fence: no run of three backticks. Inline `code` stays
# possible. `fence_piece` is one to three characters; a text may end in one or two backticks.
FENCE_PIECE = 'fence_piece ::= [^`] | "`" [^`] | "``" [^`]'

# One line of a numbered step: no line break and no code fence; it may end in backticks.
LINE_PIECE = 'line_piece ::= [^\\n`] | "`" [^\\n`] | "``" [^\\n`]'


def xml_text(name: str, max_chars: int, piece: str = "xml_piece", exclude: str = "") -> str:
    """Rule `name`: an XML element's text of at most `max_chars` pieces (needs BLANK and the `piece`
    rules, made by `xml_piece` with the same `exclude`)."""
    return f"{name} ::= blank [^ \\t\\n<{exclude}] {piece}{{0,{max_chars}}}"


def fence_text(name: str, max_chars: int) -> str:
    """Rule `name`: prose before a code block, not blank, without a fence (needs BLANK, FENCE_PIECE)."""
    return f'{name} ::= blank [^ \\t\\n`] fence_piece{{0,{max_chars}}} "`"{{0,2}}'


def code_block(name: str, language: str, max_chars: int) -> str:
    """Rules for `name`: one fenced block tagged `language` holding a program of at most about
    `max_chars` characters, the fence closed on its own line (needs BLANK, FENCE_PIECE)."""
    tag = language.lower()
    if not tag.replace("+", "").replace("#", "").isalnum():
        raise ValueError(f"cannot write a code-fence grammar for the language {language!r}")
    return "\n".join((
        f'{name} ::= "```{tag}\\n" {name}_code "\\n```"',
        f'{name}_code ::= blank [^ \\t\\n`] fence_piece{{0,{max_chars}}} "`"{{0,2}}',
    ))


def numbered_steps(name: str, max_steps: int, max_line: int) -> str:
    """Rules for `name`: a plan as 1 to `max_steps` numbered steps ("1. ..."), one line of at most
    about `max_line` characters each, every step ending with a line break (needs LINE_PIECE)."""
    return "\n".join((
        f"{name} ::= {name}_step{{1,{max_steps}}}",
        f'{name}_step ::= [1-9] [0-9]? ". " [^ \\t\\n`] line_piece{{0,{max_line}}} "`"{{0,2}} "\\n"',
    ))


def grammar(*rules: str) -> str:
    """An EBNF grammar from its rules, the first of which must be `root`."""
    if not rules[0].startswith("root ::="):
        raise ValueError("a grammar's first rule is root")
    return "\n".join(rules) + "\n"
