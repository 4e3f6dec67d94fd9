"""Building blocks of the answer grammars that vLLM enforces while decoding (structured outputs).

Each role's grammar is in its prompt module beside the prompt and the parser; these are the pieces
they share, as rules of xgrammar's EBNF (GBNF-like, with ``{m,n}`` repetition). A grammar fixes the
envelope of an answer (tags, their order and count, the code fence, a score's range) and bounds
every free-text field in characters, so a small model caught in a repetition loop is made to close
the field and go on instead of writing until ``max_tokens``; what it writes inside a field is its
own.

The shapes are chosen for the cost of decoding, measured with xgrammar 0.2.8 and Qwen2.5's 151k-token
vocabulary. A field is one bounded character class written in the same sequence as the text that
ends it (``"<code>" blank [^ \\t\\n<] [^<]{0,1200} "</code>"``): about 0.1-0.5 ms of token-mask
computation per generated token, the first of a field up to 50 ms. The same class as the last
element of a rule of its own took 5-30 ms per token, lines of bounded width 2-4 ms, and a bounded
repetition of anything richer (text allowing "<" but not "</", or backticks but not a fence) 50 ms
to 2.5 s, slower than the model itself. So the characters that would end a field are simply not
allowed in it: no "<" in an XML element (a model writes ``&lt;``, which the parsers read as "<"),
no backtick in code or in the text before it.

Every grammar accepts only answers that the role's ``is_strict`` accepts; the unit tests check it.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A role's grammar for an answer in `language` with `k` retrieved examples (only the retriever's
# depends on k; the code fences' on the language).
Grammar = Callable[[str, int], str]

# Blank space allowed where the parsers strip it, bounded so that it cannot run on either.
BLANK = "blank ::= [ \\t\\n]{0,8}"

def field(exclude: str, max_chars: int, *, chunked: bool = False) -> str:
    """An expression for free text: not blank, of at most `max_chars` characters after the first one
    (and some blank space before it), holding none of the characters of `exclude` (needs BLANK).

    Write it in the sequence that ends it, followed by its closing string: that is what keeps its
    token masks cheap (see the module's docstring). `chunked`: the bound written with `at_most`, for
    a grammar of several fields without "<" (it costs more than it saves in a grammar of one)."""
    if not re.fullmatch(r"[<`]+", exclude):
        raise ValueError(f"exclude holds characters from '<`' only: {exclude!r}")
    text = at_most(f"[^{exclude}]", max_chars) if chunked else f"[^{exclude}]{{0,{max_chars}}}"
    return f"blank [^ \\t\\n{exclude}] {text}"


# The longest counted repetition `at_most` writes as one. xgrammar unrolls about the first 128 copies
# of a counted repetition and matches the rest with a counted tail. In the retriever's grammar (ten
# fields without "<"), and in a test grammar of just two such elements, that tail cost 15-35 ms of
# token masks per generated token once a field passed about 100 characters, and the same bounds
# written with `at_most` 2 ms. In the other roles' grammars the tail is cheap (0.1-0.9 ms: one such
# field, fields without backticks, or the supervisor's two fields on synthetic answers) and `at_most`
# costs more (2.5-3 ms), so a grammar asks for it by name, after `benchmarks/grammar_masks.py`.
UNROLLED_CHARS = 120


def at_most(char_class: str, max_chars: int) -> str:
    """An expression for 0 to `max_chars` characters of `char_class`, with no counted repetition over
    UNROLLED_CHARS: one alternative per hundred-odd characters, each some full counts of UNROLLED_CHARS
    characters and then a short repetition, so that every length has exactly one derivation."""
    if max_chars <= UNROLLED_CHARS:
        return f"{char_class}{{0,{max_chars}}}"
    full = f"{char_class}{{{UNROLLED_CHARS}}} "
    alternatives = []
    written = 0  # full counts before the short repetition
    while max_chars - written * UNROLLED_CHARS > UNROLLED_CHARS:
        alternatives.append(f"{full * written}{char_class}{{0,{UNROLLED_CHARS - 1}}}")
        written += 1
    alternatives.append(f"{full * written}{char_class}{{0,{max_chars - written * UNROLLED_CHARS}}}")
    return "(" + " | ".join(alternatives) + ")"


def element(tag: str, max_chars: int, *, chunked: bool = False) -> str:
    """An expression for one XML element and its text, without "<" so that the element can end only
    at its own closing tag and holds no other element (needs BLANK; `chunked` as in `field`)."""
    return f'"<{tag}>" {field("<", max_chars, chunked=chunked)} "</{tag}>"'


def code_block(language: str, max_chars: int) -> str:
    """An expression for one block fenced with ```language, holding a program of at most `max_chars`
    characters (as `field`) without backticks, the fence closed on its own line (needs BLANK)."""
    tag = language.lower()
    if not re.fullmatch(r"[a-z0-9+#]+", tag):
        raise ValueError(f"cannot write a code-fence grammar for the language {language!r}")
    return f'"```{tag}\\n" {field("`", max_chars)} "\\n```"'


def grammar(*rules: str) -> str:
    """An EBNF grammar from its rules, the first of which must be `root`."""
    if not rules[0].startswith("root ::="):
        raise ValueError("a grammar's first rule is root")
    return "\n".join(rules) + "\n"
