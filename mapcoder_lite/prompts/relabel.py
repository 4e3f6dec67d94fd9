"""What the relabel pass's teacher is told beyond the agent's own prompt (`mapcoder_lite.collection.relabel`).

The teacher answers the agent's exact prompt with a note appended to its user message: for the
confidence agent, how the plan turned out; for the debugger, the problem's reference solution. A
training example keeps the agent's prompt without the note, so each note asks for an answer that
stands on the prompt alone: an explanation that argues from the plan (extraction drops one citing
the note), a fix of the code shown rather than a copy of the reference (extraction drops a copy).
"""

from __future__ import annotations

from mapcoder_lite.prompts.common import Message

OUTCOME = """## What happened to this plan (a note for you alone; the reader of your answer never sees it)
The plan was implemented, and the program {verdict} the problem's hidden tests.{report}
Review the plan as asked above and let your score agree with this: {band}. Write the explanation as your
own review of the plan against the problem, naming the step that makes it right or wrong; do not mention
this note, tests you were not shown, or what happened to the program."""

SAMPLE_REPORT = """
Its first failing run on the sample tests:
{report}"""

REFERENCE = """## Reference solution (for you alone: it passes every hidden test; your reader never sees it)
```{fence}
{reference}
```
Use it to understand what the code above must do, then fix that code: keep its approach and names where
they are right and change what is wrong. Do not copy the reference. Answer in the format asked above."""


def outcome_note(passed: bool, report: str = "", *, pass_min: int, fail_max: int) -> str:
    """The confidence teacher's note: the plan's program passed or failed the hidden tests, with its first
    failing sample report where it has one; the score band the outcome asks for."""
    shown = SAMPLE_REPORT.format(report=report.strip()) if report.strip() and not passed else ""
    band = f"a score of {pass_min} or more" if passed else f"a score of {fail_max} or less"
    return OUTCOME.format(verdict="passed" if passed else "failed", report=shown, band=band)


def reference_note(reference: str, language: str = "python") -> str:
    """The debugger teacher's note: the problem's reference solution."""
    return REFERENCE.format(fence=language.lower(), reference=reference.strip())


def with_note(messages: list[Message], note: str) -> list[Message]:
    """The agent's messages with `note` after its user message: the teacher's prompt (without a note,
    the agent's prompt itself)."""
    if not note:
        return list(messages)
    *head, user = messages
    return [*head, {"role": user["role"], "content": f"{user['content'].rstrip()}\n\n{note}"}]
