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

def field(exclude: str, max_chars: int) -> str:
    """An expression for free text: not blank, of at most `max_chars` characters after the first one
    (and some blank space before it), holding none of the characters of `exclude` (needs BLANK).

    Write it in the sequence that ends it, followed by its closing string: that is what keeps its
    token masks cheap (see the module's docstring)."""
    if not re.fullmatch(r"[<`]+", exclude):
        raise ValueError(f"exclude holds characters from '<`' only: {exclude!r}")
    return f"blank [^ \\t\\n{exclude}] [^{exclude}]{{0,{max_chars}}}"


def element(tag: str, max_chars: int) -> str:
    """An expression for one XML element and its text, without "<" so that the element can end only
    at its own closing tag and holds no other element (needs BLANK)."""
    return f'"<{tag}>" {field("<", max_chars)} "</{tag}>"'


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
