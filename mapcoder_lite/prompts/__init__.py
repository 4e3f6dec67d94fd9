"""Each role's prompt text beside the parser of its answer.

Every role's module has ``build_messages(...)`` (what that role is shown), ``parse(text, language)``
(what the answer says, None when it cannot be read) and ``is_strict(text, language, k=None)`` (the
exact format its training examples must have), so code that handles any role calls them alike
through `mapcoder_lite.roles`; a role whose answers do not depend on the language or k ignores them.
"""

import ast
import functools
import hashlib
from pathlib import Path

from mapcoder_lite.prompts import coder, confidence, debugger, planner, retriever


@functools.cache
def prompts_sha256() -> str:
    """A fingerprint of what the models are asked and how their answers are read: this package's code
    (every role's text, grammar and parser). Run directories record it per session, so results made with
    other prompts are told apart; the prompts are code, not settings, and a resumed run may span a change.
    Comments, docstrings and layout do not count (the syntax tree without docstrings is hashed). One hash
    for all roles: a change to any prompt marks every run made after it."""
    digest = hashlib.sha256()
    for path in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + _code(path.read_text(encoding="utf-8")).encode() + b"\0")
    return digest.hexdigest()


def _code(source: str) -> str:
    """The module's syntax tree, docstrings left out, as text."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree)


__all__ = ["coder", "confidence", "debugger", "planner", "prompts_sha256", "retriever"]
