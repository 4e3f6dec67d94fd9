"""Supervisor: read a failed run, name the agent responsible (planner or coder), and give it feedback.

The supervisor is a strong model (DeepSeek-V3 by default) used only to collect training data. It sees
the plan, its confidence, the code, the sample-test reports and, by default, the first failing hidden
test; it must answer in the XML below. The feedback goes to the blamed agent's retry, never into a
training prompt (see `mapcoder_lite.collection`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from mapcoder_lite.prompts.common import Message, chat, language_name, problem_section
from mapcoder_lite.prompts.grammar import BLANK, element, field, grammar
from mapcoder_lite.prompts.parsing import xml_tag, xml_tags

SYSTEM = """You supervise a team of programming agents: a planner writes a step-by-step plan for a
problem, and a coder implements the plan. Their program failed the problem's tests. You find which
agent is responsible and tell it, briefly, what to do differently.
You answer only in the XML format the user asks for."""

USER = """{problem}

## Algorithm named by the retriever
{algorithm}

## Plan written by the planner (its confidence: {confidence}/100)
{plan}

{attempts}

## Verdict on the hidden tests
{hidden}
{reference}{earlier}
Which agent is responsible for the failure?
- planner: the plan is wrong or incomplete (wrong algorithm, a missed case, wrong complexity).
- coder: the plan is right, but the {language} code does not implement it correctly (bugs, wrong
  input/output handling, a step left out).

Give feedback to that agent only: two to five sentences on what to change. Describe the mistake in
general terms; do not quote test data and do not write code.
Answer with exactly this XML and nothing else:
<root>
<analysis>what went wrong, in two or three sentences</analysis>
<agent>planner or coder</agent>
<feedback>the feedback for that agent</feedback>
</root>"""

ATTEMPT = """## {title}
```{fence}
{code}
```
Sample tests: {passed}/{total} passed.
{report}"""

# Reference-guided supervision (rationalization): on training problems the supervisor may see a solution
# known to pass every hidden test, to judge who went wrong and to say what the plan or code should do.
REFERENCE = """
## Reference solution (for you only: it passes every hidden test; the agents never see it)
```{fence}
{reference}
```
Use it to decide which agent went wrong and to describe, in words, what a correct plan or program
does differently. Do not copy its code or name its exact lines in the feedback.
"""

EARLIER = """
## Feedback already given in earlier rounds (it did not fix the program)
{items}
"""

# What the blamed agent's retry adds to its normal prompt. The training prompt is the normal one.
PLANNER_FEEDBACK = """

## Your previous plan
{previous}

## Feedback from a reviewer (the previous plan's program failed the tests)
{feedback}

Write a corrected plan that follows the feedback. Give only the plan, as numbered steps."""

CODER_FEEDBACK = """

## Your previous code
```{fence}
{previous}
```

## Feedback from a reviewer (the previous code failed the tests)
{feedback}

Write corrected code that follows the feedback. Answer with the complete code in a single ```{fence}
code block and no other text."""

# The agents the supervisor may blame (the <agent> answers it may give), each with what its retry adds.
FEEDBACK: dict[str, str] = {"planner": PLANNER_FEEDBACK, "coder": CODER_FEEDBACK}
BLAMEABLE: tuple[str, ...] = tuple(FEEDBACK)

_HIDDEN_CHARS = 600  # per field of the failing hidden test shown


@dataclass
class Verdict:
    agent: str  # "planner" or "coder"
    feedback: str
    analysis: str = ""


def render_attempts(attempts: list[dict[str, Any]], language: str) -> str:
    """The coder's first program for the plan and, when debugging followed, the last one."""
    if not attempts:
        return "## Code\n(no code was produced)"
    shown = [("Code written by the coder", attempts[0])]
    if len(attempts) > 1:
        rounds = attempts[-1].get("debug_round", len(attempts) - 1)
        shown.append((f"Code after {rounds} debugging round(s)", attempts[-1]))
    return "\n\n".join(
        ATTEMPT.format(
            title=title,
            fence=language.lower(),
            code=(attempt.get("code") or "# (no code)").strip(),
            passed=attempt.get("samples_passed", 0),
            total=attempt.get("total", 0),
            report=(attempt.get("report") or "").strip(),
        )
        for title, attempt in shown
    )


def _clip(value: Any) -> str:
    text = str(value)
    return text if len(text) <= _HIDDEN_CHARS else text[:_HIDDEN_CHARS] + " …(clipped)"


def render_hidden(report: dict[str, Any] | None, *, show_failing: bool) -> str:
    """The hidden-test verdict: counts always; the first failing test only when `show_failing`."""
    if not report:
        return "The final program was not scored."
    ran = report.get("total", 0) - report.get("skipped", 0)
    lines = [
        f"The final program passed {report.get('passed', 0)} of the {ran} hidden tests that ran"
        + (f" ({report['skipped']} more were skipped after the first failure)." if report.get("skipped") else ".")
    ]
    failing = next((o for o in report.get("outcomes", []) if not o.get("passed")), None)
    if show_failing and failing:
        lines.append("First failing hidden test:")
        for key in ("input", "expected", "actual", "error"):
            if failing.get(key) not in (None, ""):
                lines.append(f"{key}:\n{_clip(failing[key])}")
    return "\n".join(lines)


def build_messages(
    problem: str,
    sample_tests: list[Any],
    language: str,
    algorithm: str,
    plan: str,
    confidence: int | None,
    attempts: list[dict[str, Any]],
    hidden: str,
    earlier: list[dict[str, str]] | None = None,
    reference: str | None = None,
) -> list[Message]:
    """The supervisor's prompt; `reference`: the problem's reference solution (reference-guided supervision)."""
    given = "".join(f"- to the {v['agent']}: {v['feedback']}\n" for v in earlier or [])
    user = USER.format(
        problem=problem_section(problem, sample_tests),
        algorithm=algorithm.strip() or "(none named)",
        confidence="?" if confidence is None else confidence,
        plan=plan.strip() or "(no plan)",
        attempts=render_attempts(attempts, language),
        hidden=hidden.strip(),
        earlier=EARLIER.format(items=given.rstrip()) if given else "",
        reference=REFERENCE.format(fence=language.lower(), reference=reference.strip()) if reference else "",
        language=language_name(language),
    )
    return chat(SYSTEM, user)


def with_feedback(messages: list[Message], agent: str, previous: str, feedback: str, language: str) -> list[Message]:
    """The blamed agent's normal prompt with its previous answer and the feedback appended."""
    extra = FEEDBACK[agent].format(previous=previous.strip() or "(none)", feedback=feedback.strip(),
                                   fence=language.lower())
    *head, last = messages
    return [*head, {"role": last["role"], "content": last["content"] + extra}]


def _agent(raw: str) -> str | None:
    """ "planner", "Planning agent", "the coder." -> the agent; None when neither or both are named."""
    words = raw.lower()
    named = [a for a, stem in (("planner", "plan"), ("coder", "cod")) if stem in words]
    return named[0] if len(named) == 1 else None


def parse(text: str, language: str = "python") -> Verdict | None:
    """The blamed agent and its feedback; None when either is missing or the agent is unclear."""
    raw_agent = xml_tag(text, "agent")
    feedback = xml_tag(text, "feedback")
    agent = _agent(raw_agent) if raw_agent is not None else None
    if agent is None or not feedback:
        return None
    return Verdict(agent=agent, feedback=feedback, analysis=xml_tag(text, "analysis") or "")


def is_strict(text: str, language: str = "python", k: int | None = None) -> bool:
    """Exactly the asked XML: one root, one of each element, agent spelled planner|coder, no code."""
    body = text.strip()
    if not (body.startswith("<root>") and body.endswith("</root>")):
        return False
    if any(len(xml_tags(body, tag)) != 1 for tag in ("root", "analysis", "agent", "feedback")):
        return False
    agent, feedback = xml_tag(body, "agent") or "", xml_tag(body, "feedback") or ""
    return agent.strip() in BLAMEABLE and bool(feedback) and bool(xml_tag(body, "analysis")) and "```" not in feedback


def redact(feedback: str, secrets: list[str], *, min_chars: int = 6, mark: str = "[a hidden test]") -> tuple[str, int]:
    """Feedback with verbatim quotes of hidden-test data replaced; returns it and how many were cut.

    The supervisor is asked not to quote tests; this is the guard for when it does anyway, so the
    data it saw never reaches an agent's prompt. Short strings ("3", "YES") are too common to cut.
    """
    cut = 0
    for secret in sorted({s.strip() for s in secrets if s and len(s.strip()) >= min_chars}, key=len, reverse=True):
        feedback, count = re.subn(re.escape(secret), mark, feedback)
        cut += count
    return feedback, cut


# A reference line shorter than this ("return res", "else:") is common code, not a quote of the reference.
REFERENCE_LINE_CHARS = 16


def reference_lines(reference: str) -> list[str]:
    """The reference's lines long enough that feedback quoting one verbatim is quoting the reference."""
    return [line.strip() for line in reference.splitlines() if len(line.strip()) >= REFERENCE_LINE_CHARS]


FIELD_CHARS = {"analysis": 800, "feedback": 1200}


def answer_grammar(language: str = "python", k: int = 3) -> str:
    """The USER format: one analysis, an agent spelled exactly as one of BLAMEABLE, the feedback (no
    code block: the feedback must not carry code)."""
    agents = " | ".join(f'"{agent}"' for agent in BLAMEABLE)
    # The feedback holds no backtick either, so it cannot carry a code block.
    feedback = f'"<feedback>" {field("<`", FIELD_CHARS["feedback"])} "</feedback>"'
    return grammar(
        f'root ::= "<root>\\n" {element("analysis", FIELD_CHARS["analysis"])} "\\n<agent>" agent "</agent>\\n"'
        f' {feedback} "\\n</root>"',
        f"agent ::= {agents}",
        BLANK,
    )
