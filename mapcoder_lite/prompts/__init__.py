"""Each role's prompt text beside the parser of its answer.

Every role's module has ``build_messages(...)`` (what that role is shown), ``parse(text, language)``
(what the answer says, None when it cannot be read) and ``is_strict(text, language, k=None)`` (the
exact format its training examples must have), so code that handles any role calls them alike
through `mapcoder_lite.roles`; a role whose answers do not depend on the language or k ignores them.
"""

from mapcoder_lite.prompts import coder, confidence, debugger, planner, retriever

__all__ = ["coder", "confidence", "debugger", "planner", "retriever"]
