"""A run directory: its files, its settings, its results, and what is left to run in it.

Evals and collections write one; reports, extraction, the pipeline and the benchmarks read it:

    run.json              the run's settings (compared on resume), its sessions' wall time and prompts
    results.jsonl         one line per finished problem, written with flush + fsync
    trajectories/<id>.json  every agent call of the problem's run (for building training sets)
    checkpoints.sqlite    graph strategies: each unfinished problem's graph state after every step

    run = RunDir("runs/he")
    run.settings()                      # run.json's settings ({} when there is no run yet)
    run.done(retry_errors=True)         # the finished records by id, errors left out to be run again
    run.to_run(problems)                # the problems without a result

Where a run goes when the caller names no directory: runs/<dataset>-<split>-<strategy>[...] for an eval
(`default_out_dir`), runs/collect/<track>-<dataset>-<split> for a collection (`collect_dir_name`, which
the pipeline's collections under its workdir share).
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from mapcoder_lite.bank.store import bank_sha256
from mapcoder_lite.evals.errors import EvalError
from mapcoder_lite.files import JsonlError, cut_partial_line, jsonl, read_jsonl, write_atomic
from mapcoder_lite.graph.context import LEVERS, Context
from mapcoder_lite.prompts import prompts_sha256

if TYPE_CHECKING:
    from mapcoder_lite.evals.datasets import Problem
    from mapcoder_lite.evals.strategies import Strategy

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
TRAJECTORY_DIR = "trajectories"
CHECKPOINTS_FILE = "checkpoints.sqlite"


class SettingsMismatch(EvalError):
    """The output directory holds a run made with other settings."""


class ResultsError(EvalError, ValueError):
    """A results.jsonl or run.json that is not what a run writes; the message names the file and line."""


@dataclass
class RunSettings:
    """What makes two runs comparable; a run directory accepts only its own settings on resume."""

    dataset: str
    split: str
    strategy: str
    models: dict[str, str] = field(default_factory=dict)
    k: int | None = None
    t: int | None = None
    direct_first: bool | None = None
    stop_repeats: bool | None = None
    plan_diversity: bool | None = None
    endpoint: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    role_max_tokens: dict[str, int] | None = None  # each role's own budget (Context.max_tokens_for)
    test_timeout_s: float = 10.0
    memory_mb: int = 1024
    sandbox: str = "local"
    structured_outputs: str | None = None  # Context.structured_outputs: answer formats enforced at decoding
    retrieval: str | None = None  # Context.retrieval of a graph strategy: recall | bank | both
    bank: str | None = None  # sha256 of the exemplar bank's content, where retrieval uses one
    # {role: sha256 of its adapter's weights}, where the caller knows them (the pipeline): an adapter
    # trained again under the same name then makes a different run, not a resumable one.
    adapters: dict[str, str] | None = None

    # Where the models are served, not what they are: recorded but not compared, so that a run resumes
    # against the same models behind another address (a server restarted on a free port). A setting
    # that is a table (the supervisor's) names its address `base_url`.
    LOCATIONS: ClassVar[tuple[str, ...]] = ("endpoint", "endpoints")
    NESTED_LOCATION: ClassVar[str] = "base_url"

    @classmethod
    def make(cls, dataset: str, split: str, strategy: Strategy, context: Context) -> RunSettings:
        """Only what the strategy uses: a reference run records no model, a one-call run no k or t."""
        return cls(dataset=dataset, split=split, strategy=strategy.name,
                   **calling(context, strategy.roles), **graph_settings(context, strategy.name == "mapcoder"))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, recorded: dict[str, Any]) -> list[str]:
        mine = self.to_dict()
        return [f"{key}: {recorded.get(key, _absent_means(key, recorded)[0])!r} there, {mine[key]!r} now"
                for key in mine if key not in self.LOCATIONS and not _same_setting(key, recorded, mine[key])]


def calling(context: Context, roles: Sequence[str]) -> dict[str, Any]:
    """The settings of runs that call these roles' models (none: a run that calls no model records none)
    and score programs in the sandbox: which models, where, how they answer, how programs are run."""
    scoring = {"test_timeout_s": context.test_timeout_s, "memory_mb": context.memory_mb, "sandbox": context.sandbox}
    if not roles:
        return scoring
    return scoring | {
        "models": {role: context.model_for(role) for role in roles},
        "endpoint": context.base_url,
        "temperature": context.temperature,
        "max_tokens": context.max_tokens,
        "role_max_tokens": {role: context.max_tokens_for(role) for role in roles},
        "structured_outputs": context.structured_outputs,
    }


def graph_settings(context: Context, graph: bool) -> dict[str, Any]:
    """The MapCoder graph's settings, for a run of the graph (None for a run of one call)."""
    return {
        "k": context.k if graph else None,
        "t": context.t if graph else None,
        **{lever: getattr(context, lever) if graph else None for lever in LEVERS},
        "retrieval": context.retrieval if graph else None,
        "bank": bank_sha256(context.bank) if graph and context.retrieval != "recall" else None,
    }


def _absent_means(key: str, recorded: dict[str, Any]) -> tuple[Any, ...]:
    """What a setting missing from a recorded run stands for: the setting did not exist yet when the run
    was made (runs before structured outputs decoded free text; MapCoder runs before a lever ran the
    paper's graph; MapCoder runs before retrieval recalled examples, with no bank)."""
    if key == "structured_outputs":
        return (None, "off")
    if key == "role_max_tokens":  # every role had the one budget, max_tokens
        models = recorded.get("models") or {}
        return ({role: recorded["max_tokens"] for role in models} if models else None,)
    if key == "retrieval":
        return ("recall",) if recorded.get("strategy") == "mapcoder" else (None,)
    if key in LEVERS:
        return (False,) if recorded.get("strategy") == "mapcoder" else (None,)
    return (None,)


def _same_setting(key: str, recorded: dict[str, Any], mine: Any) -> bool:
    if key not in recorded:
        return mine in _absent_means(key, recorded)
    return _without_location(recorded[key]) == _without_location(mine)


def _moved(settings: RunSettings, recorded: dict[str, Any]) -> dict[str, Any]:
    """The settings, equal to the recorded ones, that name another address for a model."""
    def moved(key: str, value: Any) -> bool:
        if key in settings.LOCATIONS:
            return recorded.get(key) != value
        there = recorded.get(key)
        return key in recorded and there != value and _without_location(there) == _without_location(value)
    return {key: value for key, value in settings.to_dict().items() if moved(key, value)}


def _without_location(value: Any) -> Any:
    if isinstance(value, dict):
        return {name: item for name, item in value.items() if name != RunSettings.NESTED_LOCATION}
    return value


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def safe_name(problem_id: str) -> str:
    """A file name for a problem id ("HumanEval/0" -> "HumanEval_0")."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", problem_id).strip("_.") or "problem"


RUNS_DIR = Path("runs")  # relative to where a command runs, like every --out


def default_out_dir(settings: RunSettings) -> Path:
    """runs/<dataset>-<split>-<strategy>[-<coder model>][-<bank|both>]: one directory per comparable run."""
    parts = [settings.dataset, settings.split, settings.strategy]
    if settings.models:
        models = sorted(set(settings.models.values()))
        parts.append(models[0] if len(models) == 1 else "lite-" + settings.models.get("coder", models[0]))
    if settings.retrieval not in (None, "recall"):
        parts.append(settings.retrieval)
    return RUNS_DIR / safe_name("-".join(parts))


def collect_dir_name(track: str, dataset: str, split: str) -> str:
    """A collection's directory name, under runs/collect or a pipeline's workdir/collect."""
    return safe_name(f"{track}-{dataset}-{split}")


# What a result line must hold for reports, resumes and extraction to count it: field -> allowed types.
_REQUIRED: dict[str, tuple[type, ...]] = {"id": (str,), "passed": (bool,)}
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "passed_et": (bool, type(None)), "samples_passed": (bool, type(None)), "error": (str, type(None)),
    "llm_calls": (int,), "prompt_tokens": (int,), "completion_tokens": (int,), "format_failures": (dict,),
    "seconds": (int, float), "resumed": (bool,),
}


def read_results(path: Path) -> list[dict[str, Any]]:
    """The result lines of a results.jsonl. Only the last line may be cut short (by a kill mid-write):
    it is ignored; any other line that is not a well-typed result is an error naming file and line."""
    try:
        lines = read_jsonl(path)
    except JsonlError as error:
        raise ResultsError(f"{error}. Remove or fix the line, or run again into a new --out.") from None
    for number, record in lines:
        problem = _result_problem(record)
        if problem:
            raise ResultsError(f"{path}:{number}: not a result line: {problem}. Remove or fix the line, or "
                               "run again into a new --out.")
    return [record for _, record in lines]


def _result_problem(record: Any) -> str | None:
    if not isinstance(record, dict):
        return f"a JSON {type(record).__name__}, not an object"
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        return f"no {missing[0]!r} field"
    for name, types in (_REQUIRED | _OPTIONAL).items():
        if name not in record:
            continue
        value = record[name]
        # bool is an int to isinstance: a count of true is as wrong as a pass of "yes".
        if not isinstance(value, types) or (type(value) is bool and bool not in types):
            allowed = " or ".join("null" if t is type(None) else t.__name__ for t in types)
            return f"{name!r} is {json.dumps(value)[:60]}, not {allowed}"
    counts = record.get("format_failures", {})
    if not all(isinstance(k, str) and type(v) is int for k, v in counts.items()):
        return "'format_failures' must map roles to whole numbers"
    return None


def wall_seconds(run: dict[str, Any]) -> float:
    """The time its sessions ran, all together (run.json's own record)."""
    return sum(float(s.get("seconds") or 0) for s in run.get("sessions", []))


def prompt_versions(run: dict[str, Any]) -> list[str]:
    """The prompt fingerprints (`prompts_sha256`) its sessions ran with, in order, each once; sessions made
    before they were recorded are not counted (unknown, not different)."""
    return list(dict.fromkeys(s["prompts"] for s in run.get("sessions", []) if s.get("prompts")))


def done_records(records: Iterable[dict[str, Any]], retry_errors: bool = False) -> dict[str, dict[str, Any]]:
    """The problems that count as done, their records by id (a later line of a problem wins). With
    retry_errors, those recorded with an error (a timeout, an endpoint that went away) are not done:
    they run again."""
    by_id = {record["id"]: record for record in records}
    return {i: r for i, r in by_id.items() if not (retry_errors and r.get("error"))}


def to_run(problems: Iterable[Problem], done: Container[str]) -> list[Problem]:
    """The problems, in their order, that have no record among `done` (ids)."""
    return [problem for problem in problems if problem.id not in done]


class Session:
    """This session's entry in run.json: when it started, how long it has run, how many problems it finished."""

    def __init__(self, run_dir: RunDir, run: dict[str, Any]) -> None:
        self.dir = run_dir
        self.run = run
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def save(self, finished: int, *, ended: bool = False) -> None:
        entry = self.run["sessions"][-1]
        entry.update(seconds=round(self.elapsed, 3), finished=finished)
        if ended:
            entry["ended"] = _now()
        self.dir.write_run(self.run)


class RunDir:
    """The files of one run directory."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.results = self.path / RESULTS_FILE
        self.run_file = self.path / RUN_FILE
        self.trajectories = self.path / TRAJECTORY_DIR
        self.checkpoints = self.path / CHECKPOINTS_FILE

    def is_run(self) -> bool:
        """Whether a run was started here (it has its run.json)."""
        return self.run_file.is_file()

    def read_run(self) -> dict[str, Any]:
        if not self.run_file.is_file():
            return {}
        try:
            run = json.loads(self.run_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ResultsError(f"{self.run_file}: not valid JSON ({exc}); restore it, or run again into a "
                               "new --out") from None
        if not isinstance(run, dict):
            raise ResultsError(f"{self.run_file}: a JSON {type(run).__name__}, not the object a run writes")
        return run

    def write_run(self, data: dict[str, Any]) -> None:
        write_atomic(self.run_file, json.dumps(data, indent=2) + "\n")

    def settings(self) -> dict[str, Any]:
        """The settings run.json records ({} when there is none)."""
        return self.read_run().get("settings", {})

    def differences(self, settings: RunSettings) -> list[str]:
        """How these settings differ from the recorded ones (each as "key: there, now")."""
        return settings.differences(self.settings())

    def prepare(self, settings: RunSettings) -> dict[str, dict[str, Any]]:
        """Create the directory or check that it belongs to a run with these settings; returns the
        finished problems' records by id, after cutting a partial last line off the results file."""
        self.path.mkdir(parents=True, exist_ok=True)
        run = self.read_run()
        if run:
            differences = settings.differences(run.get("settings", {}))
            if differences:
                raise SettingsMismatch(
                    f"{self.path} holds a run made with other settings ({'; '.join(differences)}). "
                    "Resume it with the same settings, or pass another --out for a new run."
                )
            moved = _moved(settings, run.get("settings", {}))
            if moved:  # run.json says where the models are now
                run["settings"].update(moved)
                self.write_run(run)
        elif self.results.exists():
            raise SettingsMismatch(f"{self.path} has {RESULTS_FILE} but no {RUN_FILE}: not a run directory "
                                   "this tool made; pass another --out")
        else:
            self.write_run({"settings": settings.to_dict(), "created": _now(), "sessions": []})
        self.trajectories.mkdir(exist_ok=True)
        cut_partial_line(self.results)  # a kill's half line is redone
        return done_records(read_results(self.results))

    def records(self) -> list[dict[str, Any]]:
        """Every result line, in file order."""
        return read_results(self.results)

    def done(self, retry_errors: bool = False) -> dict[str, dict[str, Any]]:
        """The finished problems' records by id (see done_records)."""
        return done_records(self.records(), retry_errors)

    def to_run(self, problems: Sequence[Problem], retry_errors: bool = False) -> list[Problem]:
        """The problems a run here has still to run."""
        return to_run(problems, self.done(retry_errors))

    def begin_session(self, problems_total: int, origin: dict[str, Any] | None) -> Session:
        """Record a new session in run.json. `origin`: where the problems came from (data_source,
        rows_in_file), or None when the caller does not know (the keys are then removed)."""
        run = self.read_run()
        run["problems_total"] = problems_total
        if origin is not None:
            run.update(origin)
        else:
            for key in ("data_source", "rows_in_file"):
                run.pop(key, None)
        run.setdefault("sessions", []).append({"started": _now(), "seconds": 0.0, "finished": 0,
                                               "prompts": prompts_sha256()})
        self.write_run(run)
        return Session(self, run)

    def drop(self, ids: set[str]) -> None:
        """Remove these problems' records (to run them again); the rest of the file is kept as is."""
        kept = [r for r in read_results(self.results) if r.get("id") not in ids]
        write_atomic(self.results, jsonl(kept))

    def append(self, record: dict[str, Any]) -> None:
        line = jsonl([record])
        with open(self.results, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())

    def save_trajectory(self, problem_id: str, payload: dict[str, Any]) -> str:
        """Write a problem's trajectory file; returns its path relative to the run (its record's trajectory_file)."""
        relative = f"{TRAJECTORY_DIR}/{safe_name(problem_id)}.json"
        write_atomic(self.path / relative, json.dumps(payload, ensure_ascii=False, indent=1) + "\n")
        return relative

    def read_trajectory(self, record: Mapping[str, Any]) -> dict[str, Any] | None:
        """The trajectory file a result line names; None when it names none or the file is gone (a line is
        always written after its trajectory file: only a hand-edited run lacks one)."""
        name = record.get("trajectory_file")
        path = self.path / str(name or "")
        if not name or not path.is_file():
            return None
        return json.loads(path.read_text(encoding="utf-8"))


__all__ = [
    "CHECKPOINTS_FILE",
    "RESULTS_FILE",
    "RUN_FILE",
    "TRAJECTORY_DIR",
    "ResultsError",
    "RunDir",
    "RunSettings",
    "Session",
    "SettingsMismatch",
    "done_records",
    "read_results",
    "safe_name",
    "to_run",
]
