"""Trajectory collection: the paper's three tracks and ours for the confidence agent, run by the
eval runner, then extracted.

    traj_ret                   MapCoder with a strong retriever: its answers, from runs that pass.
    traj_debug                 MapCoder with a strong debugger: its fixing turns, from runs that pass.
    traj_plan_code_supervised  the correction graph: the planner's and coder's corrected answers.
    traj_conf                  MapCoder with a strong confidence agent: its scores that agree with how
                               each plan turned out (not in the paper, whose tracks train confidence on
                               the student's own scores; a small student rarely answers in format).
    traj_self                  self-distillation by rejection sampling (STaR-style, not in the paper): the
                               student plays every agent at a temperature above 0, `samples` runs per
                               problem; the runs that pass the hidden tests train every agent on answers
                               in the student's own distribution.
    traj_direct                the same for the coder's direct prompt (the graph's first attempt, ours):
                               `samples` direct answers of the student per problem, one call each; those
                               that pass the hidden tests train the coder on the prompt it sees first.

A collection is an eval run directory (`mapcoder_lite.evals.rundir`): run.json with every setting
(teacher, student and supervisor models, endpoints, k, t, …), results.jsonl scored on the hidden
tests, trajectories/<id>.json with every call. It resumes like an eval (kill it, run it again:
nothing lost, nothing repeated) and refuses a directory made with other settings. After each
session the per-agent datasets are extracted again from everything in it into ``datasets/``.

Collections are for training problems: a test split is refused before any model is called.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from mapcoder_lite.collection.context import SUPERVISOR, SUPERVISOR_ROLES, SupervisorContext
from mapcoder_lite.evals.datasets import DatasetError, Problem, ProblemSet, dataset_spec
from mapcoder_lite.evals.rundir import RUNS_DIR, RunSettings, calling, collect_dir_name, graph_settings
from mapcoder_lite.evals.runner import Runner, RunSummary
from mapcoder_lite.evals.strategies import GraphStrategy, MapCoder, OneCall, Strategy
from mapcoder_lite.finetune.split import SPLIT_SEED, VALIDATION_FRACTION
from mapcoder_lite.graph.context import LEVERS, PAPER_T, ROLES, Context
from mapcoder_lite.roles import SAMPLED_TRACKS, TEACHER_ROLES, TRACKS, TRAJ_DIRECT, TRAJ_SELF
from mapcoder_lite.roles import TRAJ_PLAN_CODE_SUPERVISED as SUPERVISED

# TEACHER_ROLES: the agents a strong teacher plays in each track, the others being the student (small)
# model; none in the supervised track, whose strong model is its supervisor.
DATASETS_DIR = "datasets"


# A split of a dataset the registry does not know that no collection runs on (a known dataset names its
# training splits: `DatasetSpec.training_splits`).
TEST_SPLITS = ("test",)
# The sampled tracks' settings (traj_self, traj_direct): runs per problem, and their temperature (at 0
# every run of a problem is the same).
SELF_SAMPLES = 4
SELF_TEMPERATURE = 0.8
# A sampled track's run's problem meta: the problem it samples, and which sample it is (1, 2, ...).
SAMPLE_OF = "sample_of"
SAMPLE = "sample"


def check_track(track: str) -> str:
    if track not in TRACKS:
        raise ValueError(f"unknown track {track!r}; choose one of: {', '.join(TRACKS)}")
    return track


def check_split(split: str, dataset: str | None = None) -> str:
    """A split a collection may run on: one of the dataset's training splits (the registry's), or for a
    dataset it does not know any but a test split; the others' problems are the evaluation's."""
    try:
        allowed: tuple[str, ...] | None = dataset_spec(dataset).training_splits if dataset else None
    except DatasetError:
        allowed = None  # problems of the caller's own (collect_problems): only "test" is known to be held out
    if split in TEST_SPLITS or (allowed is not None and split not in allowed):
        choose = ", ".join(allowed) if allowed is not None else "a training or validation split"
        raise ValueError(f"split {split!r}: collecting on test problems (held out for evaluation) would leak them "
                         f"into training; collect on {choose}")
    return split


def uses_reference(context: Context | None) -> bool:
    """Whether the run shows the supervisor each problem's reference solution (`supervisor_reference`)."""
    return isinstance(context, SupervisorContext) and context.supervisor_reference


def check_reference(track: str, dataset: str | None, split: str, problems: Sequence[Problem]) -> None:
    """Reference-guided supervision is refused (a ValueError, before any model call) but on a training
    split the dataset registry names, in the supervised track, with a reference for every problem."""
    if track != SUPERVISED:
        raise ValueError(f"supervisor_reference applies to {SUPERVISED} only (the {track} track has no supervisor)")
    check_reference_use("supervisor_reference", dataset, split, problems)


def check_reference_use(setting: str, dataset: str | None, split: str, problems: Sequence[Problem]) -> None:
    """Showing a model the problems' reference solutions (`setting` names what asks for it: the supervisor's
    or the relabel pass's teacher's) is refused, a ValueError before any model call, but on a training split
    the dataset registry names with a reference for every problem."""
    try:
        allowed = dataset_spec(dataset).training_splits if dataset else None
    except DatasetError:
        allowed = None
    if allowed is None:
        raise ValueError(f"{setting} needs a dataset the registry knows (got {dataset!r}), so that "
                         "its training splits are known: a reference is shown on training problems only")
    if split not in allowed:
        raise ValueError(f"{setting}: split {split!r} of {dataset} is not a training split "
                         f"({', '.join(allowed) or 'none'}); its reference solutions are the evaluation's")
    missing = [p.id for p in problems if not (p.reference or "").strip()]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        raise ValueError(f"{setting}: {len(missing)} of {len(problems)} problems of {dataset}/{split} "
                         f"have no reference solution ({shown})")


def sample_count(track: str, samples: int | None = None) -> int | None:
    """Runs per problem: a sampled track's `samples` (default SELF_SAMPLES); None for the other tracks
    (one run)."""
    if track not in SAMPLED_TRACKS:
        if samples is not None:
            raise ValueError(f"samples apply to {' and '.join(SAMPLED_TRACKS)} only (the {track} track runs each "
                             "problem once)")
        return None
    count = SELF_SAMPLES if samples is None else samples
    if count < 1:
        raise ValueError(f"{track} samples must be at least 1 (got {count})")
    return count


def self_temperature(context: Context, temperature: float | None = None, track: str = TRAJ_SELF) -> float:
    """A sampled track's temperature: `temperature` when given, else the context's when above 0 (every
    command's default is 0), else SELF_TEMPERATURE; 0 or less is refused, since every sample would be the
    same run."""
    chosen = temperature if temperature is not None else (context.temperature or SELF_TEMPERATURE)
    if chosen <= 0:
        raise ValueError(f"{track} samples at a temperature above 0 (got {chosen:g}): at 0 every sample of a "
                         f"problem would repeat the first (default {SELF_TEMPERATURE:g})")
    return chosen


class _Samples(ProblemSet):
    """A sampled track's runs: `samples` copies of each problem, ids "<problem>#<n>". The source is the
    problems' own, and the rows of the file behind some runs are those of their problems."""

    def __init__(self, problems: Sequence[Problem], samples: int) -> None:
        runs = [replace(problem, id=f"{problem.id}#{n}", meta=dict(problem.meta) | {SAMPLE_OF: problem.id, SAMPLE: n})
                for problem in problems for n in range(1, samples + 1)]
        super().__init__(runs, getattr(problems, "source", None))
        self.problems = problems

    def rows(self, problems: Iterable[Problem] | None = None) -> int:
        sampled = {p.meta.get(SAMPLE_OF, p.id) for p in (self if problems is None else problems)}
        behind = [p for p in self.problems if p.id in sampled]
        return self.problems.rows(behind) if isinstance(self.problems, ProblemSet) else len(behind)


def track_problems(track: str, problems: Sequence[Problem], samples: int | None = None) -> Sequence[Problem]:
    """The runs a track makes of `problems`: one each, or a sampled track's `samples` each, every sample a
    problem of its own to the runner (its own record and trajectory, skipped on resume once done). The
    graph never sees the id; extraction splits train/validation by the sampled problem (meta SAMPLE_OF)."""
    count = sample_count(track, samples)
    return problems if count is None else _Samples(problems, count)


def called_roles(track: str) -> tuple[str, ...]:
    """The agents whose models a track's runs call: every one, but the coder alone in traj_direct."""
    return OneCall.roles if track == TRAJ_DIRECT else ROLES


@dataclass
class CollectSettings(RunSettings):
    """An eval run's settings plus what a training set must record: track, teachers, students,
    each role's endpoint and the supervisor. Keys and key variables are never recorded."""

    track: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    teachers: dict[str, str] = field(default_factory=dict)
    students: dict[str, str] = field(default_factory=dict)
    supervisor: dict[str, Any] | None = None
    samples: int | None = None  # a sampled track's runs per problem

    # Recorded for collections only lately: one made before holds None for these and resumes unchecked
    # on them (it ran the paper's graph with recalled examples, as every track did; its budgets are not
    # known).
    RECORDED_LATER: ClassVar[tuple[str, ...]] = ("role_max_tokens", *LEVERS, "retrieval", "bank")

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        unknown = {key: getattr(self, key) for key in self.RECORDED_LATER if key in recorded and recorded[key] is None}
        return super().differences(recorded | unknown)

    @classmethod
    def for_track(cls, track: str, dataset: str, split: str, context: Context,
                  samples: int | None = None) -> CollectSettings:
        check_track(track)
        teachers = {role: context.model_for(role) for role in TEACHER_ROLES[track]}
        supervisor = None
        if track == SUPERVISED:
            ctx = context if isinstance(context, SupervisorContext) else SupervisorContext.from_context(context)
            supervisor = {"model": ctx.supervisor_model, "base_url": ctx.supervisor_base_url,
                          "correction_rounds": ctx.correction_rounds, "hidden_report": ctx.supervisor_hidden_report}
            if ctx.supervisor_reference:  # recorded only when on: collections made before it still resume
                supervisor["reference"] = True
            teachers[SUPERVISOR] = ctx.supervisor_model
        roles = called_roles(track)
        return cls(
            dataset=dataset,
            split=split,
            strategy=track,
            **calling(context, roles),
            # One call (traj_direct): no graph settings, as an eval run of `direct` records.
            **graph_settings(context, graph=track != TRAJ_DIRECT),
            track=track,
            endpoints={role: context.base_url_for(role) for role in roles},
            teachers=teachers,
            students={role: context.model_for(role) for role in roles if role not in TEACHER_ROLES[track]},
            supervisor=supervisor,
            samples=sample_count(track, samples),
        )


class SupervisedCorrection(GraphStrategy):
    """`traj_plan_code_supervised`: the correction graph, one run per problem.

    The graph gets the problem's hidden tests (``scoring``) because it decides on them whether to
    call the supervisor; its agents' prompts are built from the graph input alone. The runner then
    scores the returned program again, as for any strategy: that score is the one on record.
    """

    name = SUPERVISED
    roles = SUPERVISOR_ROLES

    def __init__(self, chat_models: Mapping[str, BaseChatModel] | None = None) -> None:
        self.chat_models = chat_models
        super().__init__()

    def build(self, checkpointer: BaseCheckpointSaver | None = None) -> CompiledStateGraph:
        from mapcoder_lite.collection.supervisor_graph import build_supervisor_graph

        return build_supervisor_graph(self.chat_models, checkpointer)

    def graph_input(self, problem: Problem) -> dict[str, Any]:
        from mapcoder_lite.collection.supervisor_graph import scoring_of

        return dict(problem.graph_input()) | {"id": problem.id, "scoring": scoring_of(problem)}


def make_track_strategy(track: str, chat_models: Mapping[str, BaseChatModel] | None = None) -> Strategy:
    """traj_ret, traj_debug, traj_conf and traj_self run the MapCoder graph itself (the models and the
    temperature make the track); traj_direct the coder's one direct call, as the graph's first step asks it."""
    check_track(track)
    if track == TRAJ_DIRECT:
        return OneCall(chat_models)
    return SupervisedCorrection(chat_models) if track == SUPERVISED else MapCoder(chat_models)


def track_context(track: str, context: Context | None, *, temperature: float | None = None,
                  **supervisor: Any) -> Context:
    """The context a track runs with: the paper's graph (a direct attempt that passes would leave the
    agents no trajectory to learn from; every debugging round is a turn to learn from); a sampled track
    samples at its temperature (`self_temperature`); the supervised track also needs the supervisor's settings.
    Without a context, the paper's debugging rounds too (PAPER_T; a given context keeps its t)."""
    context = (context or Context(t=PAPER_T)).paper_graph()
    if track in SAMPLED_TRACKS:
        return replace(context, temperature=self_temperature(context, temperature, track))
    if temperature is not None:
        raise ValueError(f"temperature= is {' and '.join(SAMPLED_TRACKS)}'s own setting; the other tracks take "
                         "Context.temperature")
    if track != SUPERVISED or (isinstance(context, SupervisorContext) and not supervisor):
        return context
    return SupervisorContext.from_context(context, **supervisor)


def default_collect_dir(track: str, dataset: str, split: str) -> Path:
    return RUNS_DIR / "collect" / collect_dir_name(track, dataset, split)


@dataclass
class CollectSummary:
    """Where a collection stands: the run (as an eval's) and the datasets extracted from it."""

    out_dir: Path
    run: RunSummary
    datasets: dict[str, dict[str, Any]] = field(default_factory=dict)  # role -> its stats.json

    @property
    def examples(self) -> dict[str, int]:
        return {role: stats["examples"]["total"] for role, stats in self.datasets.items()}


async def collect_problems(
    track: str,
    problems: Sequence[Problem],
    *,
    dataset: str,
    split: str,
    context: Context | None = None,
    out_dir: str | Path | None = None,
    chat_models: Mapping[str, BaseChatModel] | None = None,
    concurrency: int = 4,
    problem_timeout_s: float | None = None,
    progress: Any = True,
    console: Any = None,
    extract: bool = True,
    validation_fraction: float = VALIDATION_FRACTION,
    seed: int = SPLIT_SEED,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    ctrl_c_drains: bool = False,
    samples: int | None = None,
    temperature: float | None = None,
    retry_errors: bool = False,
    limiter: contextlib.AbstractAsyncContextManager[Any] | None = None,
) -> CollectSummary:
    """Collect one track over `problems` into out_dir (resuming what is there; with `retry_errors`, the
    runs recorded with an error, such as a problem timeout, run again), then extract.

    A sampled track makes `samples` runs of each problem (default SELF_SAMPLES) at `temperature`, else the
    context's when above 0, else SELF_TEMPERATURE (`self_temperature`; 0 is refused). A test split is
    refused before any model call. A `limiter` shared by collections run side by side caps the problems
    in flight across them all (`concurrency` still caps this one).
    """
    from mapcoder_lite.finetune.data import extract as extract_datasets

    check_split(split, dataset)
    context = track_context(track, context, temperature=temperature)
    if uses_reference(context):
        check_reference(track, dataset, split, problems)
    runs = track_problems(track, problems, samples)
    settings = CollectSettings.for_track(track, dataset, split, context, samples)
    out = Path(out_dir) if out_dir is not None else default_collect_dir(track, dataset, split)
    runner = Runner(out, make_track_strategy(track, chat_models), settings, context, concurrency=concurrency,
                    problem_timeout_s=problem_timeout_s, progress=progress, console=console, on_result=on_result,
                    ctrl_c_drains=ctrl_c_drains, retry_errors=retry_errors, limiter=limiter)
    run = await runner.run(runs)
    datasets: dict[str, dict[str, Any]] = {}
    if extract:
        # Extraction reads files and runs no code: off the event loop, but quick.
        datasets = await asyncio.to_thread(extract_datasets, [out], out / DATASETS_DIR,
                                           validation_fraction=validation_fraction, seed=seed)
    return CollectSummary(out_dir=out, run=run, datasets=datasets)


async def collect(
    track: str,
    dataset: str,
    *,
    split: str,
    context: Context | None = None,
    out_dir: str | Path | None = None,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    source: str = "auto",
    **options: Any,
) -> CollectSummary:
    """Load a dataset split and collect one track on it; `options` as for `collect_problems`.

        summary = asyncio.run(collect("traj_ret", "apps", split="train",
                                      context=Context(model="qwen2.5-coder-0.5b-instruct",
                                                      retriever_model="deepseek-chat",
                                                      retriever_base_url="https://api.deepseek.com/v1",
                                                      role_api_keys="retriever=DEEPSEEK_API_KEY")))
    """
    from mapcoder_lite.evals.datasets import dataset_spec, load_problems

    check_split(split, dataset)
    spec = dataset_spec(dataset)
    problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, data_file=data_file, source=source)
    return await collect_problems(track, problems, dataset=spec.name, split=split, context=context,
                                  out_dir=out_dir or default_collect_dir(track, spec.name, split), **options)
