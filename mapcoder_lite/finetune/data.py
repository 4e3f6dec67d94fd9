"""Per-agent training sets from collection runs: filtered, validated, de-duplicated, split by problem.

    from mapcoder_lite.finetune.data import extract
    stats = extract(["runs/collect/traj_ret-apps-train", "runs/collect/traj_debug-apps-train"], "data/sft")

Each collection run (`mapcoder_lite.collection.collect`) yields examples for the roles its track trains:

    traj_ret                   retriever: the (teacher's) retrieval answer of a run that passed its hidden tests
    traj_debug                 debugger: each turn that made failing code pass the samples, in a run that passed
    traj_plan_code_supervised  planner, coder: the corrected answer the passing run rests on, with the
                               agent's normal prompt (the supervisor's feedback is not in it)
    traj_conf                  confidence only, scored by the teacher (the other tracks' scores are the student's)
    traj_self                  every agent, the student's own answers in the runs (samples) that passed their
                               hidden tests: the retrieval; each plan whose code passed; the coder's answer
                               that is the passing program (plan -> code); the debugging turn whose code is
                               the passing program (failing code and its sample report -> the fix)
    traj_direct                coder: the student's direct answer (the graph's first attempt's prompt) in the
                               samples that passed their hidden tests
    every track                confidence: a score that agrees with how its plan turned out (below)
    relabel                    confidence, debugger: a teacher's answers to the student's prompts of finished
                               collections (`mapcoder_lite.collection.relabel`), each kept with the agent's
                               normal prompt: a score that agrees with the outcome the teacher was told and
                               does not cite it (CITES_OUTCOME); a fix, written seeing the reference, whose
                               code passed the hidden tests (and does not copy the reference, below)

Confidence labels: a plan *passed* when its code passed the hidden tests, and *failed* when its code
failed them, or when every attempt at it (the coder's and t debugging rounds) failed the samples.
A plan never coded has no outcome and gives no example. An answer is correct, and kept, when it
scores a passed plan at least `confidence_pass_min` (70) or a failed plan at most
`confidence_fail_max` (30); scores in between are not a clear verdict either way and are dropped.
The kept answers are balanced between the two outcomes (`balance_confidence`): the more common one
keeps as many as the other has, chosen by a seeded hash, since a set of one outcome teaches a
constant score that ranks nothing. Before that, a prompt labelled with both outcomes (one plan sampled
twice, its program passing once and failing once) gives no example at all.

Reference-guided supervision (`SupervisorContext.supervisor_reference`), and the relabel pass's debugger
teacher: in a run whose supervisor or teacher saw the problem's reference solution (its call record keeps
it), every candidate is measured for the longest verbatim span its completion shares with the reference
that its prompt does not hold (`reference_overlap`, recorded in the example's meta); a span of
LEAK_LINES lines (LEAK_LINE_CHARS characters at least) or of LEAK_CHARS characters drops it
(COPIES_REFERENCE), and stats.json's ``reference_overlap`` gives the distribution.

A sampled collection (traj_self, traj_direct) holds several runs of each problem; they count as one
problem for the split, and an answer repeated across them (same prompt and completion) is kept once.

Every kept example parses in its role's strict format (`mapcoder_lite.prompts.<role>.is_strict`), is
unique (same prompt and completion), and lands in train or validation by its problem, the same
way for every role and every run, so no problem is on both sides. Problems are assigned by a hash
of (seed, dataset, problem id), so a problem keeps its side as collections grow.

Output, per role: ``<out>/<role>/{train,validation}.jsonl`` with exactly
``{"prompt": [system, user], "completion": [assistant]}`` per line (TRL's conversational
prompt-completion form), line-aligned ``{train,validation}.meta.jsonl`` (problem, model, source run),
and ``stats.json`` (examples, problems, mean tokens, share dropped and why). ``<out>/manifest.json``
records the sources with their settings (teacher, student and supervisor models) and the split.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

from mapcoder_lite.collection.records import classify_corrections, round_of
from mapcoder_lite.collection.tracks import SAMPLE, SAMPLE_OF
from mapcoder_lite.evals.rundir import RUN_FILE, RunDir
from mapcoder_lite.files import MANIFEST_FILE, jsonl, write_atomic
from mapcoder_lite.finetune.split import SPLIT_SEED, SPLITS, VALIDATION_FRACTION, hash_unit, split_problems
from mapcoder_lite.graph.context import ROLES
from mapcoder_lite.prompts import confidence as confidence_prompt
from mapcoder_lite.prompts import debugger as debugger_prompt
from mapcoder_lite.prompts import planner as planner_prompt
from mapcoder_lite.prompts.common import Message
from mapcoder_lite.roles import RELABEL, SAMPLED_TRACKS, TRACK_ROLES, role_spec

CONFIDENCE_PASS_MIN = 70
CONFIDENCE_FAIL_MAX = 30

# Why a candidate is dropped (stats.json counts them).
RUN_ERROR = "run ended with an error"
HIDDEN_FAILED = "final code failed the hidden tests"
NOT_FIXING = "debugging turn did not make the samples pass"
NO_OUTCOME = "plan never coded (no outcome to label)"
DISAGREES = "confidence disagrees with the plan's outcome"
NOT_STRICT = "not in the strict format"
DUPLICATE = "duplicate"
NOT_PASSING_PLAN = "plan did not lead to the program that passed"
NOT_FINAL = "code is not the program that passed"
UNBALANCED = "its outcome outnumbers the other (confidence balanced)"
CONFLICTING = "the same prompt is labelled with both outcomes (a plan that passed once and failed once)"
COPIES_REFERENCE = "copies the reference solution the supervisor or teacher saw"
CITES_OUTCOME = "explanation cites the outcome the teacher was told"
CONFIDENCE_LABELS = ("passed", "failed")

# The leak check of reference-guided supervision (`SupervisorContext.supervisor_reference`): a completion
# of a run whose supervisor saw the reference solution is dropped when it shares with the reference a
# verbatim span (consecutive lines, whitespace-normalized, blank lines skipped) that its prompt does not
# contain, of LEAK_LINES lines holding LEAK_LINE_CHARS characters, or of LEAK_CHARS characters. Why these:
# MBPP's references are mostly 3 to 8 lines, and an independently written correct program often agrees
# with one on a line or two (the `def` line with the statement's argument names, a `return` of a short
# expression), so a 2-line span is no evidence of copying; three consecutive identical lines are, unless
# they are boilerplate. Measured on the 0.5B student's passing programs for MBPP validation, written
# without the reference (71, from a MapCoder run and a direct one): 49 share no line with it, 17 one
# line, 4 two, 1 three, that one "return True / else: / return False" (30 characters), hence the
# 40-character floor for a 3-line span. LEAK_CHARS catches the one long line (a comprehension, a regex)
# copied whole, about the length of three ordinary lines.
LEAK_LINES = 3
LEAK_LINE_CHARS = 40
LEAK_CHARS = 120
OVERLAP_BINS = ("0", "1", "2", f"{LEAK_LINES}+")


def approx_tokens(text: str) -> int:
    """Words and punctuation marks: a tokenizer-free estimate (pass `count_tokens` for exact counts)."""
    return len(re.findall(r"\w+|[^\w\s]", text))


@dataclass
class Candidate:
    """One (prompt, completion) pair found in a run, with why it is dropped (None: kept so far)."""

    role: str
    problem: str  # "<dataset>:<problem id>": the unit of the train/validation split
    prompt: list[Message]
    completion: str
    model: str
    source: str
    track: str
    reason: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def example(self) -> dict[str, Any]:
        messages = [{"role": m["role"], "content": m["content"]} for m in self.prompt]
        return {"prompt": messages, "completion": [{"role": "assistant", "content": self.completion}]}

    def meta(self) -> dict[str, Any]:
        return {"problem": self.problem, "model": self.model, "source": self.source, "track": self.track} | self.extra

    def key(self) -> str:
        return json.dumps(self.example(), sort_keys=True, ensure_ascii=False)


# ---------------------------------------------------------------- what each role's examples are


def is_readable(role: str, text: str, *, language: str = "python") -> bool:
    """Whether the graph's own (lenient) parser reads the answer: not a format failure in a run."""
    return role_spec(role).prompt.parse(text, language) is not None


def is_strict(role: str, text: str, *, language: str = "python", k: int | None = None) -> bool:
    """The role's strict format check, as the trained adapter must answer."""
    return role_spec(role).prompt.is_strict(text, language, k)


def _code_lines(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines() if line.strip()]


def _holds(lines: list[str], run: list[str]) -> bool:
    return any(lines[i:i + len(run)] == run for i in range(len(lines) - len(run) + 1))


def reference_overlap(completion: str, reference: str, prompt: str) -> dict[str, int]:
    """The longest verbatim span the completion shares with the reference that the prompt does not
    contain: {"lines", "chars"} (whitespace-normalized lines, blank ones skipped). The span reported is
    one that `leaks` when any does, else the longest by lines, then by characters. A span the prompt
    holds (the signature, a sample test) was not learned from the reference; any part of a held span
    is held too, so the longest common run starting at each line pair is the only one to test."""
    ours, theirs, shown = _code_lines(completion), _code_lines(reference), _code_lines(prompt)
    best = (False, 0, 0)
    for i in range(len(ours)):
        for j in range(len(theirs)):
            length = 0
            while i + length < len(ours) and j + length < len(theirs) and ours[i + length] == theirs[j + length]:
                length += 1
            run = ours[i:i + length]
            if length and not _holds(shown, run):
                span = {"lines": length, "chars": sum(map(len, run)) + length - 1}
                best = max(best, (leaks(span), span["lines"], span["chars"]))
    return {"lines": best[1], "chars": best[2]}


def leaks(overlap: dict[str, int]) -> bool:
    """Whether a `reference_overlap` is a copy of the reference (the thresholds' comment says why)."""
    return (overlap["lines"] >= LEAK_LINES and overlap["chars"] >= LEAK_LINE_CHARS) or overlap["chars"] >= LEAK_CHARS


def plan_outcome(plan: dict[str, Any], final_code: str, passed: bool) -> bool | None:
    """True: the plan's code passed the hidden tests; False: it failed them or every attempt failed
    the samples; None: never coded, or a corrected entry (confidence never scored it)."""
    if plan.get("corrected"):
        return None
    if "hidden_passed" in plan:  # the correction graph scored this plan's code itself
        return bool(plan["hidden_passed"])
    attempts = plan.get("attempts") or []
    if final_code and any(a.get("code") == final_code for a in attempts):
        return passed
    if plan.get("tried") and attempts and not plan.get("passed"):
        return False
    return None


def plan_of(prompt: list[Message], plans: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The plan a confidence prompt shows: the longest plan text found in it."""
    user = prompt[-1]["content"] if prompt else ""
    found = [p for p in plans if not p.get("corrected") and p.get("plan", "").strip()
             and p["plan"].strip() in user]
    return max(found, key=lambda p: len(p["plan"]), default=None)


def _fixing_turn(response: str, plans: list[dict[str, Any]], language: str) -> bool:
    """Whether this debugger answer's code is an attempt (after a debugging round) passing every sample."""
    revision = debugger_prompt.parse(response, language)
    if revision is None:
        return False
    return any(
        a.get("debug_round", 0) >= 1 and a.get("code") == revision.code and a.get("samples_passed") == a.get("total")
        for plan in plans
        for a in plan.get("attempts") or []
    )


def _final_answer(role: str, response: str, final_code: str, language: str) -> bool:
    """Whether this coder or debugger answer's code is the run's final program."""
    parsed = role_spec(role).prompt.parse(response, language)
    code = getattr(parsed, "code", parsed)  # the debugger's Revision carries the code
    return bool(final_code) and code == final_code


def _plan_passed(response: str, plans: list[dict[str, Any]], final_code: str, passed: bool) -> bool:
    """Whether the plan this planner answer gives is one whose code passed the hidden tests."""
    text = planner_prompt.parse(response)
    return text is not None and any(plan_outcome(p, final_code, passed) for p in plans if p.get("plan") == text)


# The relabel pass's confidence teacher is told how the plan turned out, but the training prompt is the
# agent's normal one, which never says. An explanation that cites what it was told ("the hidden tests
# pass", "as we were told") would teach the agent to claim evidence it never has, so it is dropped. The
# phrases are those a model writes when it leans on such a note; reasoning about the plan itself ("this
# loop would fail on an empty list") uses none of them.
_CITES_OUTCOME = re.compile(
    r"hidden[ _-]?tests?|\b(?:was|were|been|am|are|is) told\b|\bthe note\b|\boutcome\b|"
    r"\b(?:we|i) (?:already )?know (?:that )?(?:it|the (?:plan|program|code))|\bknown to (?:pass|fail|work)|"
    r"\b(?:it|the (?:plan|program|code|implementation)) (?:has |had |was )?(?:passed|failed)\b",
    re.IGNORECASE,
)


def cites_outcome(response: str) -> bool:
    """Whether a confidence answer's explanation refers to being told its plan's outcome."""
    scored = confidence_prompt.parse(response)
    return bool(scored and _CITES_OUTCOME.search(scored.explanation))


@dataclass
class _ProblemRun:
    """One finished run of a collection (a record and its trajectory) as extraction reads it."""

    record: dict[str, Any]
    settings: dict[str, Any]
    source: str
    trajectory: list[dict[str, Any]]
    plans: list[dict[str, Any]]
    final_code: str
    language: str

    @classmethod
    def read(cls, record: dict[str, Any], saved: dict[str, Any], settings: dict[str, Any], source: str) -> _ProblemRun:
        return cls(record=record, settings=settings, source=source, trajectory=saved.get("trajectory") or [],
                   plans=saved.get("plans") or [], final_code=saved.get("code") or record.get("code") or "",
                   language=(saved.get("input") or {}).get("language") or "python")

    @property
    def passed(self) -> bool:
        return bool(self.record.get("passed"))

    @property
    def gate(self) -> str | None:
        """Why no answer of this run teaches anything (None: the run passed its hidden tests)."""
        return RUN_ERROR if self.record.get("error") else (None if self.passed else HIDDEN_FAILED)

    @cached_property  # read by each kind of answer in turn
    def first_pass(self) -> list[dict[str, Any]]:
        """The graph's own calls (not corrections); a refused call (a prompt longer than the context
        window) has no answer to learn from."""
        return [call for call in self.trajectory if round_of(call) == 0 and not call.get("error")]

    def candidate(self, role: str, call: dict[str, Any], prompt: list[Message], reason: str | None,
                  **extra: Any) -> Candidate:
        meta = self.record.get("meta") or {}
        # The samples of one problem (a sampled track) are one problem to the split.
        problem = f"{self.settings.get('dataset', '')}:{meta.get(SAMPLE_OF, self.record['id'])}"
        sample = {"sample": meta[SAMPLE]} if SAMPLE in meta else {}
        return Candidate(role=role, problem=problem, prompt=prompt, completion=call.get("response", ""),
                         model=call.get("model", ""), source=self.source, track=self.settings["track"],
                         reason=reason, extra=sample | extra)


def _relabelled(run: _ProblemRun, roles: Sequence[str], pass_min: int, fail_max: int) -> list[Candidate]:
    """A relabel record's teacher answer (`mapcoder_lite.collection.relabel`) with the agent's normal
    prompt, the one the teacher's prompt extended with the outcome or the reference: a confidence score
    that agrees with the plan's recorded outcome and does not cite it; a fix whose code passed the
    hidden tests (the record's verdict on it)."""
    found: list[Candidate] = []
    meta = run.record.get("meta") or {}
    relabels = {"relabels": f"{meta.get('source', '')}/{meta.get('record', '')}"}  # the call's source run
    for call in run.trajectory:
        relabel = call.get("relabel")
        if not relabel or call.get("error") or call["role"] not in roles:
            continue  # a refused call has no answer
        if call["role"] == "confidence":
            label = relabel["label"]
            reason = RUN_ERROR if run.record.get("error") else (
                confidence_disagreement(call.get("response", ""), label == CONFIDENCE_LABELS[0], pass_min, fail_max)
                or (CITES_OUTCOME if cites_outcome(call.get("response", "")) else None))
            found.append(run.candidate("confidence", call, relabel["prompt"], reason, label=label, **relabels))
        else:
            found.append(run.candidate(call["role"], call, relabel["prompt"], run.gate, **relabels))
    return found


def scored_plan(call: dict[str, Any], record: dict[str, Any], plans: list[dict[str, Any]],
                final_code: str) -> tuple[dict[str, Any] | None, bool | None]:
    """The plan a confidence call scored, and its outcome (`plan_outcome`; None in a run that ended with
    an error, whose verdict is not the plan's)."""
    plan = plan_of(call["messages"], plans)
    if plan is None or record.get("error"):
        return plan, None
    return plan, plan_outcome(plan, final_code, bool(record.get("passed")))


def _confidence_verdict(call: dict[str, Any], record: dict[str, Any], plans: list[dict[str, Any]], final_code: str,
                        pass_min: int, fail_max: int) -> tuple[str | None, str]:
    """Why a confidence answer is not an example (None: it is one), and its plan's outcome as a label:
    a score agrees with the outcome when it is at least pass_min for a plan that passed, at most
    fail_max for one that failed."""
    _, outcome = scored_plan(call, record, plans, final_code)
    label = "unknown" if outcome is None else outcome_label(outcome)
    if record.get("error"):
        return RUN_ERROR, label
    if outcome is None:
        return NO_OUTCOME, label
    return confidence_disagreement(call.get("response", ""), outcome, pass_min, fail_max), label


def outcome_label(outcome: bool) -> str:
    """A plan outcome as a confidence example's label (one of CONFIDENCE_LABELS)."""
    return CONFIDENCE_LABELS[0] if outcome else CONFIDENCE_LABELS[1]


def confidence_disagreement(response: str, outcome: bool, pass_min: int = CONFIDENCE_PASS_MIN,
                            fail_max: int = CONFIDENCE_FAIL_MAX) -> str | None:
    """Why a confidence answer is no label of its plan's outcome (None: its score agrees with it): no
    readable score, or one below pass_min for a plan that passed, above fail_max for one that failed."""
    scored = confidence_prompt.parse(response)
    if scored is None:
        return NOT_STRICT  # no readable score at all
    if not (scored.confidence >= pass_min if outcome else scored.confidence <= fail_max):
        return DISAGREES
    return None


def _retrievals(run: _ProblemRun) -> list[Candidate]:
    return [run.candidate("retriever", c, c["messages"], run.gate) for c in run.first_pass if c["role"] == "retriever"]


def _own_answers(run: _ProblemRun, roles: Sequence[str]) -> list[Candidate]:
    """The sampled tracks: the student's own plans and programs that the passing program rests on."""
    found: list[Candidate] = []
    for call in run.first_pass:
        if call["role"] not in roles:
            continue
        if call["role"] == "planner":
            rests_on = _plan_passed(call["response"], run.plans, run.final_code, run.passed)
            found.append(run.candidate("planner", call, call["messages"],
                                       run.gate or (None if rests_on else NOT_PASSING_PLAN)))
        elif call["role"] in ("coder", "debugger"):
            final = _final_answer(call["role"], call["response"], run.final_code, run.language)
            found.append(run.candidate(call["role"], call, call["messages"],
                                       run.gate or (None if final else NOT_FINAL)))
    return found


def _debugging_turns(run: _ProblemRun) -> list[Candidate]:
    """Each debugging turn that made failing code pass the samples, in a run that passed."""
    return [run.candidate("debugger", c, c["messages"],
                          run.gate or (None if _fixing_turn(c["response"], run.plans, run.language) else NOT_FIXING))
            for c in run.first_pass if c["role"] == "debugger"]


def _corrections(run: _ProblemRun, roles: Sequence[str]) -> list[Candidate]:
    """The supervised track's corrected answers, each with the agent's normal prompt."""
    return [run.candidate(call["role"], call, call["correction"]["prompt"], run.gate or why, round=round_of(call))
            for call, why in classify_corrections(run.trajectory, run.final_code, run.language)
            if call["role"] in roles]


def _confidences(run: _ProblemRun, pass_min: int, fail_max: int) -> list[Candidate]:
    found: list[Candidate] = []
    for call in run.first_pass:
        if call["role"] == "confidence":
            reason, label = _confidence_verdict(call, run.record, run.plans, run.final_code, pass_min, fail_max)
            found.append(run.candidate("confidence", call, call["messages"], reason, label=label))
    return found


def _track_answers(run: _ProblemRun, roles: Sequence[str], pass_min: int, fail_max: int) -> list[Candidate]:
    """A track's candidates: the graph's own answers, and the supervised track's corrections."""
    track = run.settings["track"]
    found = _retrievals(run) if "retriever" in roles else []
    if track in SAMPLED_TRACKS:
        found += _own_answers(run, roles)
    else:
        found += _debugging_turns(run) if "debugger" in roles else []
        found += _corrections(run, roles) if "planner" in roles or "coder" in roles else []
    return found + (_confidences(run, pass_min, fail_max) if "confidence" in roles else [])


def _drop_copies_of_the_reference(found: list[Candidate], trajectory: list[dict[str, Any]]) -> None:
    """Reference-guided supervision, and the relabel pass's fixes: the supervisor's or the teacher's call
    record holds the reference it saw; a kept candidate that copies it is dropped (the overlap is kept)."""
    reference = next((call["reference"] for call in trajectory if call.get("reference")), None)
    if not reference:
        return
    for candidate in found:
        if candidate.reason is None:
            overlap = reference_overlap(candidate.completion, reference,
                                        "\n".join(m["content"] for m in candidate.prompt))
            candidate.extra["reference_overlap"] = overlap
            candidate.reason = COPIES_REFERENCE if leaks(overlap) else None


def _candidates_of_problem(run: _ProblemRun, roles: Sequence[str], pass_min: int, fail_max: int) -> list[Candidate]:
    relabel = run.settings["track"] == RELABEL
    found = (_relabelled if relabel else _track_answers)(run, roles, pass_min, fail_max)
    for candidate in found:
        if candidate.reason is None and not is_strict(candidate.role, candidate.completion, language=run.language,
                                                      k=run.settings.get("k")):
            candidate.reason = NOT_STRICT
    _drop_copies_of_the_reference(found, run.trajectory)
    return found


def candidates_from_run(
    run_dir: str | Path,
    *,
    roles: Sequence[str] | None = None,
    confidence_pass_min: int = CONFIDENCE_PASS_MIN,
    confidence_fail_max: int = CONFIDENCE_FAIL_MAX,
) -> tuple[dict[str, Any], list[Candidate]]:
    """A collection run's settings and every candidate example in it (kept or not, with why)."""
    run = RunDir(run_dir)
    if not run.is_run():
        raise FileNotFoundError(f"{run.path} has no {RUN_FILE}: not a collection run directory")
    settings = run.settings()
    track = settings.get("track")
    if track not in TRACK_ROLES:
        raise ValueError(f"{run.path} is not a collection run (its settings name no track; "
                         f"tracks are {', '.join(TRACK_ROLES)})")
    wanted = [r for r in TRACK_ROLES[track] if roles is None or r in roles]
    found: list[Candidate] = []
    for record in run.records():
        saved = run.read_trajectory(record)
        if saved is None:
            continue
        found += _candidates_of_problem(_ProblemRun.read(record, saved, settings, str(run.path)), wanted,
                                        confidence_pass_min, confidence_fail_max)
    return settings, found


# ---------------------------------------------------------------- balance, split, write, stats


def _balance(candidates: list[Candidate], seed: int) -> None:
    """Drop the surplus of the more common confidence label (UNBALANCED), so both keep as many; which
    ones stay is decided by a seeded hash of each example, not by the order of the runs."""
    by_label = {label: [c for c in candidates if c.reason is None and c.extra.get("label") == label]
                for label in CONFIDENCE_LABELS}
    count = min(len(group) for group in by_label.values())
    for group in by_label.values():
        for candidate in sorted(group, key=lambda c: hash_unit(seed, c.key()))[count:]:
            candidate.reason = UNBALANCED


def _drop_conflicts(candidates: list[Candidate]) -> None:
    """Drop every confidence example whose prompt another kept one labels with the other outcome: the same
    plan sampled twice can pass once and fail once, and a model cannot learn both scores (CONFLICTING)."""
    labels: dict[str, set[str]] = {}
    prompt_of = {id(c): json.dumps(c.prompt, sort_keys=True, ensure_ascii=False) for c in candidates}
    for candidate in candidates:
        if candidate.reason is None:
            labels.setdefault(prompt_of[id(candidate)], set()).add(candidate.extra.get("label"))
    for candidate in candidates:
        if candidate.reason is None and len(labels[prompt_of[id(candidate)]]) > 1:
            candidate.reason = CONFLICTING


def _mean(values: list[int]) -> float:
    return round(sum(values) / len(values), 1) if values else 0.0


def _stats(role: str, candidates: list[Candidate], kept: dict[str, list[Candidate]],
           count_tokens: Callable[[str], int], counter: str) -> dict[str, Any]:
    total = len(candidates)
    reasons = Counter(c.reason for c in candidates if c.reason is not None)
    dropped = sum(reasons.values())
    every = [c for side in SPLITS for c in kept[side]]
    return {
        "role": role,
        "examples": {side: len(kept[side]) for side in SPLITS} | {"total": len(every)},
        "problems": {side: len({c.problem for c in kept[side]}) for side in SPLITS}
        | {"total": len({c.problem for c in every})},
        "mean_tokens": {
            "prompt": _mean([sum(count_tokens(m["content"]) for m in c.prompt) for c in every]),
            "completion": _mean([count_tokens(c.completion) for c in every]),
            "counter": counter,
        },
        "candidates": total,
        "dropped": {
            "total": dropped,
            "share": round(dropped / total, 4) if total else 0.0,
            "reasons": {reason: {"count": n, "share": round(n / total, 4)} for reason, n in reasons.most_common()},
        },
        "models": dict(Counter(c.model for c in every)),
        "sources": sorted({c.source for c in candidates}),
    } | _overlap_stats(candidates)


def _overlap_stats(candidates: list[Candidate]) -> dict[str, Any]:
    """The leak check's distribution over the candidates it measured (those of runs whose supervisor saw
    the reference), kept or dropped: the longest span shared with the reference, in lines; none when no
    run had a reference."""
    measured = [c.extra["reference_overlap"] for c in candidates if "reference_overlap" in c.extra]
    if not measured:
        return {}
    bins = Counter(OVERLAP_BINS[min(o["lines"], LEAK_LINES)] for o in measured)
    return {"reference_overlap": {
        "checked": len(measured),
        "dropped": sum(leaks(o) for o in measured),
        "threshold": {"lines": LEAK_LINES, "line_chars": LEAK_LINE_CHARS, "chars": LEAK_CHARS},
        "lines": {name: bins[name] for name in OVERLAP_BINS},
        "max": {"lines": max(o["lines"] for o in measured), "chars": max(o["chars"] for o in measured)},
    }}


def _gather(run_dirs: Sequence[str | Path], roles: Sequence[str] | None, pass_min: int,
            fail_max: int) -> tuple[list[dict[str, Any]], dict[str, list[Candidate]]]:
    """Each run's settings, and every candidate by role; a role the runs' tracks train is listed even
    without candidates, so its (empty) dataset is written."""
    sources: list[dict[str, Any]] = []
    by_role: dict[str, list[Candidate]] = {}
    for run_dir in run_dirs:
        settings, found = candidates_from_run(run_dir, roles=roles, confidence_pass_min=pass_min,
                                              confidence_fail_max=fail_max)
        sources.append({"path": str(run_dir), "settings": settings})
        for role in TRACK_ROLES[settings["track"]]:
            if roles is None or role in roles:
                by_role.setdefault(role, [])
        for candidate in found:
            by_role[candidate.role].append(candidate)
    return sources, by_role


def _mark_duplicates(candidates: list[Candidate]) -> None:
    """Within one role, the first occurrence (in run, problem, call order) of an example stays."""
    seen: set[str] = set()
    for candidate in candidates:
        if candidate.reason is not None:
            continue
        key = candidate.key()
        if key in seen:
            candidate.reason = DUPLICATE
        seen.add(key)


def extract(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
    roles: Sequence[str] | None = None,
    count_tokens: Callable[[str], int] | None = None,
    token_counter: str = "",
    confidence_pass_min: int = CONFIDENCE_PASS_MIN,
    confidence_fail_max: int = CONFIDENCE_FAIL_MAX,
    balance_confidence: bool = True,
) -> dict[str, dict[str, Any]]:
    """Write the per-role datasets of `run_dirs` under out_dir (replacing what was there); returns
    each role's stats. Roles no run provides get no directory. `balance_confidence`: as many
    confidence examples of passed plans as of failed ones (the module's doc)."""
    if roles is not None and set(roles) - set(ROLES):
        raise ValueError(f"unknown roles {sorted(set(roles) - set(ROLES))}; roles are {', '.join(ROLES)}")
    sources, by_role = _gather(run_dirs, roles, confidence_pass_min, confidence_fail_max)

    for candidates in by_role.values():
        _mark_duplicates(candidates)
    if "confidence" in by_role:
        _drop_conflicts(by_role["confidence"])
    if balance_confidence and "confidence" in by_role:
        _balance(by_role["confidence"], seed)

    # One split for all roles, over the problems that gave any example.
    sides = split_problems({c.problem for cs in by_role.values() for c in cs if c.reason is None},
                           validation_fraction, seed)
    counting = count_tokens or approx_tokens
    counter = token_counter or ("approx: words and punctuation" if count_tokens is None else "given")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_stats: dict[str, dict[str, Any]] = {}
    for role in ROLES:
        if role not in by_role:
            continue
        candidates = by_role[role]
        kept = {side: [c for c in candidates if c.reason is None and sides[c.problem] == side] for side in SPLITS}
        folder = out / role
        folder.mkdir(exist_ok=True)
        for side in SPLITS:
            write_atomic(folder / f"{side}.jsonl", jsonl(c.example() for c in kept[side]))
            write_atomic(folder / f"{side}.meta.jsonl", jsonl(c.meta() for c in kept[side]))
        stats = _stats(role, candidates, kept, counting, counter) | {"validation_fraction": validation_fraction,
                                                                     "seed": seed}
        if role == "confidence":
            labels = Counter(c.extra.get("label", "") for side in SPLITS for c in kept[side])
            stats["labels"] = {"pass_min": confidence_pass_min, "fail_max": confidence_fail_max,
                               "balanced": balance_confidence} | {label: labels[label] for label in CONFIDENCE_LABELS}
        write_atomic(folder / "stats.json", json.dumps(stats, indent=2, ensure_ascii=False) + "\n")
        all_stats[role] = stats

    manifest = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "sources": sources,
        "validation_fraction": validation_fraction,
        "seed": seed,
        "split": {side: sorted(p for p, s in sides.items() if s == side) for side in SPLITS},
        "roles": {role: stats["examples"] for role, stats in all_stats.items()},
    }
    write_atomic(out / MANIFEST_FILE, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
    return all_stats


def hf_token_counter(name_or_path: str) -> Callable[[str], int]:
    """Exact counts with a Hugging Face tokenizer (needs `transformers`; loaded here, not at import)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    return lambda text: len(tokenizer.encode(text, add_special_tokens=False))
