"""How the correction loop marks its calls in the trajectory, and which corrected answers a passing run keeps.

Every call record (`mapcoder_lite.llm.Call.record()`) made after the first MapCoder pass carries
``round`` (1, 2, …: the supervisor round it belongs to). The supervisor's carries ``verdict``; a
blamed agent's retry carries ``correction``: ``{"agent", "feedback", "prompt"}`` where ``prompt`` is
the agent's normal prompt *without* the feedback, the prompt a training example uses. Records of the
first pass have no ``round``. The run files (`trajectories/<id>.json`) keep these records as they are,
so extraction reads everything from them.
"""

from __future__ import annotations

from typing import Any

from mapcoder_lite.prompts import coder as coder_prompt

# Why a corrected answer of a passing run is not a training example.
UNREADABLE = "corrected answer unreadable"
SUPERSEDED = "superseded by a later correction"
DEBUGGED = "corrected code was changed by debugging before it passed"


def round_of(record: dict[str, Any]) -> int:
    return int(record.get("round") or 0)


def classify_corrections(
    trajectory: list[dict[str, Any]], final_code: str, language: str = "python"
) -> list[tuple[dict[str, Any], str | None]]:
    """Each correction record with None when the final program rests on it, else why not.

    The final program rests on the last planner correction (its plan was coded and debugged into
    the final program) and on the last coder correction after it, if that code itself is the final
    program: code that needed debugging to pass is not an answer to train the coder on. A new plan
    makes earlier code corrections moot; a later correction of the same agent replaces an earlier one.
    """
    verdicts: dict[int, str | None] = {}
    planner: int | None = None
    coder: int | None = None
    for index, record in enumerate(trajectory):
        if not record.get("correction"):
            continue
        verdicts[index] = None if record.get("parsed") else UNREADABLE
        if record["role"] == "planner":
            # A new plan, or the old one again after an unreadable retry, is coded from scratch.
            if coder is not None and verdicts[coder] is None:
                verdicts[coder] = SUPERSEDED
            coder = None
            if record.get("parsed"):
                if planner is not None:
                    verdicts[planner] = SUPERSEDED
                planner = index
        else:
            # An unreadable retry leaves no code (debugging starts from nothing): it replaces too.
            if coder is not None:
                verdicts[coder] = SUPERSEDED
            coder = index if record.get("parsed") else None
    if coder is not None and coder_prompt.parse(trajectory[coder]["response"], language) != final_code:
        verdicts[coder] = DEBUGGED
    return [(trajectory[index], reason) for index, reason in verdicts.items()]


def corrected_pairs(
    trajectory: list[dict[str, Any]], final_code: str, language: str = "python"
) -> list[dict[str, Any]]:
    """The (prompt without feedback -> corrected answer) pairs a run that passed its hidden tests yields."""
    return [
        {
            "role": record["role"],
            "prompt": record["correction"]["prompt"],
            "completion": record["response"],
            "round": round_of(record),
            "model": record.get("model", ""),
        }
        for record, reason in classify_corrections(trajectory, final_code, language)
        if reason is None
    ]
