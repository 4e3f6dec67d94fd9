"""The relabel pass: a teacher answers the student's own prompts from finished collections, knowing what
the student cannot.

    from mapcoder_lite.evals.datasets import load_problems
    summary = asyncio.run(relabel(["runs/collect/traj_self-mbpp-train"], problems=load_problems("mbpp", "train"),
                                  context=Context(model="qwen2.5-coder-1.5b-instruct",
                                                  base_url="http://127.0.0.1:8001/v1")))

Self-distillation (traj_self) barely yields two kinds of examples: confidence scores that agree with how
their plan turned out (the student's own rarely do), and debugging turns that rescue a plan (the untuned
student's rescued none of 34 plans across our benchmark runs). This pass reads finished collection runs
of any track and has a teacher write them, through the agents' one model door (`RoleModels`, each call
with its role's answer grammar where the server takes one):

    confidence  scored plans whose outcome is known (`plan_outcome`), as many that failed as passed (the
                surplus would be dropped by extraction's balance): the agent's exact prompt (its
                call record's) plus a note of the outcome (the plan's program passed or failed the hidden
                tests, with its first failing sample report where there is one) -> explanation, score.
    debugger    each plan's first attempt whose code failed its samples: the debugger's normal prompt, built as the
                graph builds it from what the run's trajectory holds, plus the problem's reference
                solution (training splits only, refused otherwise, as for the supervisor) -> a corrected
                plan and code, run on the problem's hidden tests with the eval's scoring.

Its run directory (`mapcoder_lite.evals.rundir`) holds one record per teacher call, since one call is the
unit of work a kill may lose: results.jsonl (`passed`: the fix passed the hidden tests, or the score
agrees with the outcome), trajectories/<id>.json (the call: the teacher's prompt, its answer and model,
and the agent's normal prompt that a training example keeps, plus the reference it saw). It resumes like
a collection: a finished call is never made again (one recorded with an error is), and a directory made
with other settings (teacher, sources, roles, reference; not the endpoint) is refused. Identical teacher prompts
(traj_self's samples of a problem often repeat a plan or a failing program) are asked once.

Extraction reads the directory like a track's (`mapcoder_lite.finetune.data`, where each rule lives): every
answer with the agent's normal prompt (no outcome note, no reference), a confidence answer kept when
strict, agreeing with the outcome and not citing it (balanced with the other confidence examples), a fix
kept when strict, passing the hidden tests, and not copying the reference (the leak check of
reference-guided supervision, its overlap in the example's meta and in stats.json).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from mapcoder_lite.collection.records import round_of
from mapcoder_lite.collection.tracks import (
    DATASETS_DIR,
    SAMPLE,
    SAMPLE_OF,
    check_reference_use,
    check_split,
    default_collect_dir,
)
from mapcoder_lite.evals.datasets import Problem
from mapcoder_lite.evals.rundir import RunDir, RunSettings, calling, done_records
from mapcoder_lite.evals.runner import EndpointDown, Interrupts, RunProgress, Tally, endpoint_is_down
from mapcoder_lite.evals.scoring import Score, score, scoring_limits
from mapcoder_lite.finetune.data import (
    CONFIDENCE_FAIL_MAX,
    CONFIDENCE_LABELS,
    CONFIDENCE_PASS_MIN,
    confidence_disagreement,
    outcome_label,
    scored_plan,
)
from mapcoder_lite.finetune.split import SPLIT_SEED, VALIDATION_FRACTION, hash_unit
from mapcoder_lite.graph.context import Context
from mapcoder_lite.llm import Call, PromptTooLong, RoleCallError, RoleModels
from mapcoder_lite.prompts import debugger as debugger_prompt
from mapcoder_lite.prompts import relabel as relabel_prompt
from mapcoder_lite.prompts.common import Message
from mapcoder_lite.roles import RELABEL, TRACK_ROLES, TRACKS, role_spec

# The agents the teacher answers for: those the registry says the relabel pass trains.
RELABEL_ROLES: tuple[str, ...] = TRACK_ROLES[RELABEL]
# What asks for the reference, in the errors of `check_reference_use`.
REFERENCE_SETTING = "relabel reference (the debugger teacher's)"


def check_roles(roles: str | Iterable[str]) -> tuple[str, ...]:
    """The roles to relabel ("confidence,debugger" or a list), in the registry's order; unknown or none
    is a ValueError naming the known ones."""
    chosen = [r.strip() for r in (roles.split(",") if isinstance(roles, str) else roles) if r.strip()]
    unknown = [r for r in chosen if r not in RELABEL_ROLES]
    if unknown or not chosen:
        what = f"unknown roles {unknown}" if unknown else "no roles"
        raise ValueError(f"relabel: {what}; the teacher relabels {', '.join(RELABEL_ROLES)}")
    return tuple(r for r in RELABEL_ROLES if r in chosen)


@dataclass
class Task:
    """One teacher call: the agent's normal prompt, and what the teacher is told besides."""

    id: str
    role: str
    prompt: list[Message]  # the agent's own prompt: the training example's
    note: str  # appended for the teacher (the outcome; the reference)
    language: str
    input: dict[str, Any]  # the source run's graph input (the problem as the agents saw it)
    meta: dict[str, Any]
    label: str | None = None  # confidence: the plan's outcome ("passed" / "failed")
    problem: Problem | None = None  # debugger: the problem whose hidden tests score the fix
    reference: str | None = None  # debugger: the reference solution the teacher saw

    def messages(self) -> list[Message]:
        return relabel_prompt.with_note(self.prompt, self.note)


@dataclass
class RelabelWork:
    """The teacher calls finished source runs call for, with everything checked before any of them."""

    dataset: str
    split: str
    sources: list[Path]
    roles: tuple[str, ...]
    reference: bool
    tasks: list[Task]

    def to_run(self, out_dir: str | Path) -> list[Task]:
        """The tasks without a finished record in out_dir (one recorded with an error runs again)."""
        done = RunDir(out_dir).done(retry_errors=True)
        return [task for task in self.tasks if task.id not in done]


@dataclass
class RelabelSettings(RunSettings):
    """A relabel directory's settings: the teacher's, the source runs (absolute paths), the roles and
    whether the debugger teacher sees the reference. Keys and key variables are never recorded."""

    track: str = RELABEL
    roles: list[str] = field(default_factory=list)
    endpoints: dict[str, str] = field(default_factory=dict)
    teachers: dict[str, str] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)
    reference: bool = False

    @classmethod
    def of(cls, work: RelabelWork, context: Context) -> RelabelSettings:
        roles = list(work.roles)
        return cls(
            dataset=work.dataset,
            split=work.split,
            strategy=RELABEL,
            **calling(context, roles),
            roles=roles,
            endpoints={role: context.base_url_for(role) for role in roles},
            teachers={role: context.model_for(role) for role in roles},
            sources=[str(path) for path in work.sources],
            reference=work.reference and "debugger" in roles,
        )


def default_relabel_dir(dataset: str, split: str) -> Path:
    """runs/collect/relabel-<dataset>-<split>, beside the collections it relabels."""
    return default_collect_dir(RELABEL, dataset, split)


# ---------------------------------------------------------------- what the sources call for


def read_sources(paths: Sequence[str | Path]) -> tuple[list[RunDir], str, str]:
    """The source runs (each a collection of one track), and the dataset and split they all share."""
    if not paths:
        raise ValueError("relabel: no source runs; name the finished collection directories to relabel (--from DIR)")
    runs = [RunDir(path) for path in dict.fromkeys(Path(p).expanduser().resolve() for p in paths)]
    for run in runs:
        if not run.is_run():
            raise ValueError(f"relabel: {run.path} has no run.json: not a collection run directory")
        track = run.settings().get("track")
        if track not in TRACKS:
            raise ValueError(f"relabel: {run.path} is not a collection of a track (its settings name "
                             f"{track!r}); the pass relabels runs of {', '.join(TRACKS)}")
    names = [run.path.name for run in runs]
    if len(set(names)) < len(names):  # task ids start with the source's name
        raise ValueError(f"relabel: two source runs share a directory name ({', '.join(sorted(names))})")
    problems = {(run.settings().get("dataset"), run.settings().get("split")) for run in runs}
    if len(problems) > 1:
        shown = ", ".join(f"{d}/{s}" for d, s in sorted(problems, key=str))
        raise ValueError(f"relabel: the source runs are of different splits ({shown}); relabel one dataset split "
                         "at a time, into a directory of its own")
    ((dataset, split),) = problems
    check_split(str(split), dataset)
    return runs, str(dataset), str(split)


def _first_failing(plan: Mapping[str, Any]) -> tuple[int, dict[str, Any]] | None:
    """The plan's first attempt whose code failed a sample, with its index (None when none did)."""
    for index, attempt in enumerate(plan.get("attempts") or []):
        if attempt.get("total") and attempt.get("samples_passed", 0) < attempt["total"]:
            return index, attempt
    return None


def _first_failing_report(plan: Mapping[str, Any]) -> str:
    """The sample report of the plan's first attempt that failed a sample ('' when none did)."""
    failing = _first_failing(plan)
    return str(failing[1].get("report") or "") if failing else ""


def _algorithm(trajectory: list[dict[str, Any]], language: str) -> str:
    """The algorithm the run's retriever named, as the graph kept it for the debugger ('' when none)."""
    for call in trajectory:
        if call["role"] == "retriever" and not round_of(call) and not call.get("error"):
            parsed = role_spec("retriever").prompt.parse(call.get("response", ""), language)
            return parsed.algorithm if parsed else ""
    return ""


def failing_attempts(plans: list[dict[str, Any]]) -> Iterable[tuple[int, int, dict[str, Any]]]:
    """(plan index, attempt index, attempt) for the first attempt of each plan whose code failed a sample:
    what the debugger is shown first. Only the first: a plan's later attempts are the student's own failed
    fixes of it, and asking the teacher to fix each of them too would multiply the pass's slowest calls
    by the collection's t for examples of one plan's one mistake."""
    for p, plan in enumerate(plans):
        if failing := _first_failing(plan):
            a, attempt = failing
            yield p, a, attempt | {"plan": attempt.get("plan", plan.get("plan", ""))}


def debugger_messages(graph_input: Mapping[str, Any], attempt: Mapping[str, Any], algorithm: str) -> list[Message]:
    """The debugger's prompt for a failing attempt, as the graph's debugger node builds it from its state
    (the attempt holds the plan, the code and the rendered sample report the node reads)."""
    language = graph_input.get("language") or "python"
    return debugger_prompt.build_messages(graph_input["problem"], list(graph_input.get("sample_tests") or []),
                                          language, attempt.get("plan", ""), attempt.get("code", ""),
                                          attempt.get("report", ""), algorithm, graph_input.get("entry_point"))


def _tasks_of_run(run: RunDir, record: dict[str, Any], saved: dict[str, Any], roles: Sequence[str],
                  problem: Problem | None, reference: bool) -> list[Task]:
    graph_input = dict(saved.get("input") or {})
    language = graph_input.get("language") or "python"
    trajectory: list[dict[str, Any]] = saved.get("trajectory") or []
    plans: list[dict[str, Any]] = saved.get("plans") or []
    meta = record.get("meta") or {}
    base = f"{run.path.name}/{record['id']}"
    # The source problem and sample: extraction splits train/validation by the problem, as for the source.
    shared = {SAMPLE_OF: meta.get(SAMPLE_OF, record["id"]), "source": run.path.name, "record": record["id"]}
    shared |= {SAMPLE: meta[SAMPLE]} if SAMPLE in meta else {}
    tasks: list[Task] = []
    if "confidence" in roles:
        final_code = saved.get("code") or record.get("code") or ""
        for index, call in enumerate(trajectory):
            if call["role"] != "confidence" or round_of(call) or call.get("error"):
                continue
            plan, outcome = scored_plan(call, record, plans, final_code)
            if plan is None or outcome is None:
                continue  # never coded, or a run that ended with an error: no outcome to tell
            note = relabel_prompt.outcome_note(outcome, _first_failing_report(plan), pass_min=CONFIDENCE_PASS_MIN,
                                               fail_max=CONFIDENCE_FAIL_MAX)
            label = outcome_label(outcome)
            tasks.append(Task(id=f"{base}/confidence/{index}", role="confidence", prompt=call["messages"], note=note,
                              language=language, input=graph_input, meta=shared | {"label": label}, label=label))
    if "debugger" in roles and graph_input.get("problem"):
        algorithm = _algorithm(trajectory, language)
        shown = (problem.reference or "").strip() if reference and problem else ""
        for p, a, attempt in failing_attempts(plans):
            tasks.append(Task(id=f"{base}/debugger/{p}.{a}", role="debugger",
                              prompt=debugger_messages(graph_input, attempt, algorithm),
                              note=relabel_prompt.reference_note(shown, language) if shown else "",
                              language=language, input=graph_input, meta=dict(shared), problem=problem,
                              reference=shown or None))
    return tasks


def relabel_work(sources: Sequence[str | Path], *, roles: str | Iterable[str] = RELABEL_ROLES,
                 problems: Iterable[Problem] | None = None, reference: bool = True,
                 seed: int = SPLIT_SEED) -> RelabelWork:
    """Every teacher call the source runs call for; bad input is a ValueError here, before any call: no
    source, a run that is not a collection, runs of different splits or of a test split, an unknown role,
    and for the debugger a problem not among `problems` (its hidden tests score the fix) or, with the
    reference on, one without a reference or a split that is not a training split."""
    chosen = check_roles(roles)
    runs, dataset, split = read_sources(sources)
    by_id = {p.id: p for p in problems or []}
    found: list[tuple[RunDir, dict[str, Any], dict[str, Any]]] = []
    for run in runs:
        for record in run.done().values():
            saved = run.read_trajectory(record)
            if saved is not None:
                found.append((run, record, saved))
    needed: dict[str, Problem | None] = {}
    if "debugger" in chosen:
        for _, record, _ in found:
            problem_id = (record.get("meta") or {}).get(SAMPLE_OF, record["id"])
            needed[problem_id] = by_id.get(problem_id)
        untested = sorted(p for p, problem in needed.items() if problem is not None and not problem.has_hidden_tests)
        if untested:
            raise ValueError(f"relabel: the debugger's fixes are scored on each problem's hidden tests, and "
                             f"{', '.join(untested[:5])}{' …' if len(untested) > 5 else ''} have none")
        missing = sorted(p for p, problem in needed.items() if problem is None)
        if missing:
            raise ValueError(f"relabel: the debugger's fixes are scored on each problem's hidden tests, and "
                             f"{len(missing)} problems of the source runs are not among those given "
                             f"({', '.join(missing[:5])}{' …' if len(missing) > 5 else ''}); load all of "
                             f"{dataset}/{split}")
        if reference:
            check_reference_use(REFERENCE_SETTING, dataset, split, [p for p in needed.values() if p is not None])
    tasks: list[Task] = []
    seen: set[str] = set()
    for run, record, saved in found:
        problem = needed.get((record.get("meta") or {}).get(SAMPLE_OF, record["id"]))
        for task in _tasks_of_run(run, record, saved, chosen, problem, reference):
            key = repr((task.role, task.messages()))
            if key not in seen:  # the same teacher prompt is asked once
                seen.add(key)
                tasks.append(task)
    return RelabelWork(dataset=dataset, split=split, sources=[run.path for run in runs], roles=chosen,
                       reference=reference, tasks=_balanced(tasks, seed))


def _balanced(tasks: list[Task], seed: int) -> list[Task]:
    """The tasks with as many confidence tasks of the more common outcome as the other has, chosen by a
    seeded hash of their id: extraction keeps the two outcomes balanced (`_balance`), so a teacher call for
    the surplus (most plans of a small student fail) would be thrown away."""
    by_label = {label: [t for t in tasks if t.role == "confidence" and t.label == label]
                for label in CONFIDENCE_LABELS}
    count = min(len(group) for group in by_label.values())
    surplus = {id(t) for group in by_label.values()
               for t in sorted(group, key=lambda t: hash_unit(seed, t.id))[count:]}
    return [t for t in tasks if id(t) not in surplus]


# ---------------------------------------------------------------- asking the teacher


@dataclass
class RelabelSummary:
    """Where a relabel directory stands: its teacher calls, and the datasets extracted from it."""

    out_dir: Path
    tasks: int  # teacher calls the sources call for
    done: int  # of them, recorded
    passed: int  # of them, answers meeting the bar (a fix passing the hidden tests, a score agreeing)
    new: int  # made in this session
    errors: int  # of the new ones, recorded with an error
    seconds: float
    interrupted: bool = False
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def examples(self) -> dict[str, int]:
        return {role: stats["examples"]["total"] for role, stats in self.datasets.items()}


class _Relabeller:
    """Asks the teacher each task's prompt, scores a fix, and writes the record."""

    def __init__(self, run: RunDir, settings: RelabelSettings, context: Context, models: RoleModels,
                 pool: ThreadPoolExecutor) -> None:
        self.run, self.settings, self.context, self.models, self.pool = run, settings, context, models, pool
        self.limits = scoring_limits(context.test_timeout_s, context.memory_mb)

    async def _thread(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, lambda: function(*args, **kwargs))

    async def one(self, task: Task) -> dict[str, Any]:
        start = time.perf_counter()
        call: Call | None = None
        parsed: Any = None
        verdict: Score | None = None
        error: str | None = None
        try:
            parsed, call = await self._thread(self.models.ask, task.role, task.messages(), self.context,
                                              task.language)
        except PromptTooLong as refused:  # no answer, but the refused call is on record
            call, error = refused.call, f"RoleCallError: {refused}"
        except RoleCallError as exc:
            if endpoint_is_down(exc):
                raise EndpointDown(str(exc)) from exc
            error = f"RoleCallError: {exc}"
        except Exception as exc:  # one call's failure (a client's error, a timeout) is this task's, asked again
            error = f"{type(exc).__name__}: {exc}"
        code = getattr(parsed, "code", "") if task.role == "debugger" else ""
        passed = False
        if error is None and call is not None:
            if task.role == "debugger":
                try:  # the eval's scoring, on the problem's hidden tests; no code scores as failed
                    verdict = await self._thread(score, task.problem, code, sandbox=self.context.sandbox,
                                                 limits=self.limits)
                    passed = verdict.passed
                except Exception as exc:  # a broken sandbox fails this task, not the pass
                    error = f"scoring failed: {type(exc).__name__}: {exc}"
            else:
                passed = confidence_disagreement(call.response, task.label == outcome_label(True)) is None
        return self._record(task, call, parsed, code, verdict, passed, error, time.perf_counter() - start)

    def _record(self, task: Task, call: Call | None, parsed: Any, code: str, verdict: Score | None, passed: bool,
                error: str | None, seconds: float) -> dict[str, Any]:
        calls = []
        if call is not None:
            relabel = {"prompt": task.prompt} | ({"label": task.label} if task.label else {})
            calls.append(call.record() | {"relabel": relabel} | ({"reference": task.reference}
                                                                    if task.reference else {}))
        answered = call is not None and call.error is None
        trajectory_file = self.run.save_trajectory(task.id, {
            "id": task.id, "input": task.input, "settings": self.settings.to_dict(), "trajectory": calls,
            "plans": [], "code": code, "passed": passed, "error": error,
        })
        return {
            "id": task.id,
            "passed": passed,
            "role": task.role,
            "code": code,
            "hidden": verdict.report if verdict else None,
            "format_failures": {task.role: int(answered and parsed is None)},
            "llm_calls": int(answered),
            "prompt_tokens": call.prompt_tokens if call else 0,
            "completion_tokens": call.completion_tokens if call else 0,
            "seconds": round(seconds, 3),
            "error": error,
            "meta": task.meta,
            "trajectory_file": trajectory_file,
        }


async def relabel(
    sources: Sequence[str | Path],
    *,
    context: Context,
    roles: str | Iterable[str] = RELABEL_ROLES,
    problems: Iterable[Problem] | None = None,
    reference: bool = True,
    out_dir: str | Path | None = None,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    progress: Any = True,
    console: Any = None,
    extract: bool = True,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    ctrl_c_drains: bool = False,
) -> RelabelSummary:
    """Relabel finished collection runs into out_dir (default runs/collect/relabel-<dataset>-<split>),
    resuming what is there, then extract its datasets into out_dir/datasets.

    `context` is the teacher's: the model and endpoint each relabelled role's calls go to (`model_for`,
    `base_url_for`), its temperature, budget and structured outputs. `problems`: the split's problems
    (the debugger's fixes are scored on their hidden tests and, with `reference`, the teacher sees their
    reference solutions). `progress`: True, a shared rich Progress, or False, as for an eval's runner.
    Every check of `relabel_work`, and a directory of other settings (SettingsMismatch), fails before any
    call.
    """
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
    work = relabel_work(sources, roles=roles, problems=problems, reference=reference, seed=seed)
    out = Path(out_dir) if out_dir is not None else default_relabel_dir(work.dataset, work.split)
    settings = RelabelSettings.of(work, context)
    run = RunDir(out)
    recorded = run.prepare(settings)
    done = done_records(recorded.values(), retry_errors=True)
    if len(done) < len(recorded):  # a call that ended with an error is asked again
        run.drop(set(recorded) - set(done))
    todo = [task for task in work.tasks if task.id not in done]
    ids = {task.id for task in work.tasks}
    tally = Tally(done=sum(1 for i in done if i in ids),
                  passed=sum(1 for i, r in done.items() if i in ids and r.get("passed")))
    session = run.begin_session(len(work.tasks), None)
    loop = asyncio.get_running_loop()
    interrupts = Interrupts.of(loop, console) if ctrl_c_drains else Interrupts(loop, install=False)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="mapcoder-relabel")
    relabeller = _Relabeller(run, settings, context, RoleModels(chat_models), pool)
    queue = list(reversed(todo))
    # Its pass@1 column is the share of teacher answers meeting the bar.
    bar = RunProgress(progress, console, total=len(work.tasks), done=tally.done,
                      label=f"{work.dataset}/{work.split} {RELABEL}")

    def add(record: dict[str, Any]) -> None:
        run.append(record)
        tally.add(record)
        session.save(tally.new)
        bar.update(tally, session.elapsed)
        if on_result:
            on_result(record)

    async def worker() -> None:
        while queue and not interrupts.draining:
            add(await relabeller.one(queue.pop()))

    workers = [asyncio.create_task(worker()) for _ in range(min(concurrency, len(todo)))]
    try:
        with bar:
            if workers:
                finished, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
                for finished_task in finished:
                    finished_task.result()  # the first failure (EndpointDown, a bug) ends the pass
    finally:
        for worker_task in workers:
            worker_task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        pool.shutdown(wait=False, cancel_futures=True)
        session.save(tally.new, ended=True)
    summary = RelabelSummary(out_dir=out, tasks=len(work.tasks), done=tally.done, passed=tally.passed,
                             new=tally.new, errors=tally.errors, seconds=round(session.elapsed, 3),
                             interrupted=interrupts.draining and tally.done < len(work.tasks))
    if extract:
        from mapcoder_lite.finetune.data import extract as extract_datasets

        summary.datasets = await asyncio.to_thread(extract_datasets, [out], out / DATASETS_DIR,
                                                   validation_fraction=validation_fraction, seed=seed)
    return summary
