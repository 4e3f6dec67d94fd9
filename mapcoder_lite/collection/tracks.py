"""Trajectory collection: the paper's three tracks and ours for the confidence agent, run by the
eval runner, then extracted.

    traj_ret                   MapCoder with a strong retriever: its answers, from runs that pass.
    traj_debug                 MapCoder with a strong debugger: its fixing turns, from runs that pass.
    traj_plan_code_supervised  the correction graph: the planner's and coder's corrected answers.
    traj_conf                  MapCoder with a strong confidence agent: its scores that agree with how
                               each plan turned out (not in the paper, whose tracks train confidence on
                               the student's own scores; a small student rarely answers in format).

A collection is an eval run directory (`mapcoder_lite.evals.rundir`): run.json with every setting
(teacher, student and supervisor models, endpoints, k, t, …), results.jsonl scored on the hidden
tests, trajectories/<id>.json with every call. It resumes like an eval (kill it, run it again:
nothing lost, nothing repeated) and refuses a directory made with other settings. After each
session the per-agent datasets are extracted again from everything in it into ``datasets/``.

Collections are for training problems: a test split is refused before any model is called.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph.state import CompiledStateGraph

from mapcoder_lite.collection.context import SUPERVISOR, SUPERVISOR_ROLES, SupervisorContext
from mapcoder_lite.evals.datasets import Problem
from mapcoder_lite.evals.rundir import RunSettings, safe_name
from mapcoder_lite.evals.runner import Runner, RunSummary
from mapcoder_lite.evals.strategies import GraphStrategy, MapCoder, Strategy
from mapcoder_lite.graph.context import ROLES, Context
from mapcoder_lite.roles import TEACHER_ROLES, TRACKS
from mapcoder_lite.roles import TRAJ_PLAN_CODE_SUPERVISED as SUPERVISED

# TEACHER_ROLES: the agents a strong teacher plays in each track, the others being the student (small)
# model; none in the supervised track, whose strong model is its supervisor.
DATASETS_DIR = "datasets"


# Splits no collection runs on: their problems are the evaluation's, and training on them would leak it.
TEST_SPLITS = ("test",)


def check_track(track: str) -> str:
    if track not in TRACKS:
        raise ValueError(f"unknown track {track!r}; choose one of: {', '.join(TRACKS)}")
    return track


def check_split(split: str) -> str:
    """A split a collection may run on: any but a test split, whose problems the evaluation uses."""
    if split in TEST_SPLITS:
        raise ValueError(f"split {split!r}: collecting on test problems would train the agents on the evaluation's "
                         "problems; collect on the train or validation split")
    return split


@dataclass
class CollectSettings(RunSettings):
    """An eval run's settings plus what a training set must record: track, teachers, students,
    each role's endpoint and the supervisor. Keys and key variables are never recorded."""

    track: str = ""
    endpoints: dict[str, str] = field(default_factory=dict)
    teachers: dict[str, str] = field(default_factory=dict)
    students: dict[str, str] = field(default_factory=dict)
    supervisor: dict[str, Any] | None = None

    @classmethod
    def for_track(cls, track: str, dataset: str, split: str, context: Context) -> CollectSettings:
        check_track(track)
        teachers = {role: context.model_for(role) for role in TEACHER_ROLES[track]}
        supervisor = None
        if track == SUPERVISED:
            ctx = context if isinstance(context, SupervisorContext) else SupervisorContext.from_context(context)
            supervisor = {"model": ctx.supervisor_model, "base_url": ctx.supervisor_base_url,
                          "correction_rounds": ctx.correction_rounds, "hidden_report": ctx.supervisor_hidden_report}
            teachers[SUPERVISOR] = ctx.supervisor_model
        return cls(
            dataset=dataset,
            split=split,
            strategy=track,
            models={role: context.model_for(role) for role in ROLES},
            k=context.k,
            t=context.t,
            endpoint=context.base_url,
            temperature=context.temperature,
            max_tokens=context.max_tokens,
            test_timeout_s=context.test_timeout_s,
            memory_mb=context.memory_mb,
            sandbox=context.sandbox,
            structured_outputs=context.structured_outputs,
            track=track,
            endpoints={role: context.base_url_for(role) for role in ROLES},
            teachers=teachers,
            students={role: context.model_for(role) for role in ROLES if role not in TEACHER_ROLES[track]},
            supervisor=supervisor,
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
    """traj_ret, traj_debug and traj_conf run the MapCoder graph itself (the models make the track)."""
    check_track(track)
    return SupervisedCorrection(chat_models) if track == SUPERVISED else MapCoder(chat_models)


def track_context(track: str, context: Context | None, **supervisor: Any) -> Context:
    """The context a track runs with: the paper's graph (a direct attempt that passes would leave the
    agents no trajectory to learn from; every debugging round is a turn to learn from); the supervised
    track also needs the supervisor's settings."""
    context = (context or Context()).paper_graph()
    if track != SUPERVISED or (isinstance(context, SupervisorContext) and not supervisor):
        return context
    return SupervisorContext.from_context(context, **supervisor)


def default_collect_dir(track: str, dataset: str, split: str) -> Path:
    return Path("runs") / "collect" / safe_name(f"{track}-{dataset}-{split}")


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
    validation_fraction: float = 0.1,
    seed: int = 0,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    ctrl_c_drains: bool = False,
) -> CollectSummary:
    """Collect one track over `problems` into out_dir (resuming what is there), then extract. A test
    split is refused before any model call."""
    from mapcoder_lite.finetune.data import extract as extract_datasets

    check_split(split)
    context = track_context(track, context)
    settings = CollectSettings.for_track(track, dataset, split, context)
    out = Path(out_dir) if out_dir is not None else default_collect_dir(track, dataset, split)
    runner = Runner(out, make_track_strategy(track, chat_models), settings, context, concurrency=concurrency,
                    problem_timeout_s=problem_timeout_s, progress=progress, console=console, on_result=on_result,
                    ctrl_c_drains=ctrl_c_drains)
    run = await runner.run(problems)
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

    check_split(split)
    spec = dataset_spec(dataset)
    problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, data_file=data_file, source=source)
    return await collect_problems(track, problems, dataset=spec.name, split=split, context=context,
                                  out_dir=out_dir or default_collect_dir(track, spec.name, split), **options)
