"""Building an exemplar bank from a dataset's training splits.

Every problem of the splits becomes an exemplar when a program for it passes all of its hidden tests
in the sandbox, scored exactly as `mapcoder-lite eval --strategy reference` scores: the dataset's
reference solution first, else the final program of a passing run. Its plan is the one that led a
passing run (eval or collect directories on those splits, `runs`) to its final program; a problem no
run solved that way keeps an empty plan, and the manifest counts those. Test splits, and any split
the dataset registry does not mark as training (`DatasetSpec.training_splits`), are refused before
any work: a bank is shown to the model while it is evaluated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mapcoder_lite.bank.store import BankError, Exemplar, check_out, write_bank
from mapcoder_lite.collection.tracks import SAMPLE_OF
from mapcoder_lite.evals.datasets import DatasetError, DatasetSpec, Problem, dataset_spec, load_problems
from mapcoder_lite.evals.rundir import RUN_FILE, ResultsError, RunDir
from mapcoder_lite.evals.scoring import score, scoring_limits
from mapcoder_lite.nodes.testing import normalized


def training_splits(dataset: str, splits: Iterable[str]) -> tuple[DatasetSpec, list[str]]:
    """The dataset and its splits, each checked to be a training split; else a BankError saying why."""
    try:
        spec = dataset_spec(dataset)
    except DatasetError as error:
        raise BankError(str(error)) from None
    chosen = list(dict.fromkeys(s.strip() for s in splits if s.strip()))
    if not chosen:
        raise BankError("no split given; a bank is built from training splits (e.g. --split train,validation)")
    allowed = ", ".join(spec.training_splits) or "none"
    for split in chosen:
        if split not in spec.splits:
            raise BankError(f"{spec.name} has no split {split!r}; its splits are {', '.join(spec.splits)}")
        if split not in spec.training_splits:
            raise BankError(f"{spec.name}/{split} is not a training split: a bank is shown to the model while it is "
                            f"evaluated, so its problems must never be evaluation problems. Training splits of "
                            f"{spec.name}: {allowed}")
    return spec, chosen


@dataclass
class Solved:
    """A passing run's final program for one problem, and the plan it was coded from ("" if none)."""

    code: str
    plan: str
    run: str


def plan_of(record: dict[str, Any]) -> str:
    """The plan behind a result's final program: the plan of the attempt that produced it (the
    debugger's revision, if it revised it); "" when the program came from no plan (a direct answer)."""
    final = normalized(record.get("code") or "")
    for plan in record.get("plans") or []:
        for attempt in reversed(plan.get("attempts") or []):
            if final and normalized(attempt.get("code") or "") == final:
                return (attempt.get("plan") or plan.get("plan") or "").strip()
    return ""


def _recorded_settings(run: Path) -> dict[str, Any]:
    """The settings of the run in `run`; a BankError when it is not a run directory."""
    run_dir = RunDir(run)
    try:
        recorded = run_dir.read_run() if run_dir.is_run() else None
    except (OSError, ResultsError):
        recorded = None
    if recorded is None:
        raise BankError(f"{run}: not a run directory (no readable {RUN_FILE}); --runs takes eval or collect "
                        "run directories")
    return recorded.get("settings") or {}


def solved_in_runs(runs: Sequence[str | Path], spec: DatasetSpec) -> dict[str, list[Solved]]:
    """Problem id -> what passing runs solved it with, in the order of `runs`. Every run must be an eval
    or collect directory on a training split of this dataset (checked before anything is read)."""
    settings = []
    for run in map(Path, runs):
        recorded = _recorded_settings(run)
        try:
            name = dataset_spec(str(recorded.get("dataset"))).name
        except DatasetError:
            name = str(recorded.get("dataset"))
        if name != spec.name:
            raise BankError(f"{run}: a run on {name}, not on {spec.name}")
        if recorded.get("split") not in spec.training_splits:
            raise BankError(f"{run}: a run on {spec.name}/{recorded.get('split')}, not on a training split; its "
                            "plans were made on problems held out for evaluation")
        settings.append(run)
    solved: dict[str, list[Solved]] = {}
    for run in settings:
        for record in RunDir(run).records():
            if record.get("passed") and not record.get("error") and (record.get("code") or "").strip():
                # A traj_self run is one sample of its problem.
                problem = (record.get("meta") or {}).get(SAMPLE_OF) or record["id"]
                solved.setdefault(problem, []).append(Solved(record["code"], plan_of(record), str(run)))
    return solved


@dataclass
class Verdict:
    problem: Problem
    split: str
    exemplar: Exemplar | None
    reason: str = ""  # why no exemplar: what failed


@dataclass
class BuildStats:
    """What a build did; the manifest holds the same counts."""

    manifest: dict[str, Any]
    failed: list[dict[str, str]] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, Any]:
        return self.manifest["counts"]


def verify(problem: Problem, split: str, solved: list[Solved], *, sandbox: str, limits: Any) -> Verdict:
    """The problem's exemplar: the first program that passes every hidden test (the reference, then the
    runs' programs), with the first recorded plan of a run that solved it."""
    plan = next((s for s in solved if s.plan), None)
    candidates = ([("reference", problem.reference)] if problem.reference else []) + [(s.run, s.code) for s in solved]
    # Python reads \r\n as \n (MBPP's references have Windows line ends): the code shown is the code verified.
    candidates = [(source, code.replace("\r\n", "\n")) for source, code in candidates]
    if not problem.has_hidden_tests:
        return Verdict(problem, split, None, "no hidden tests to verify a program against")
    reasons = []
    for source, code in candidates:
        try:
            verdict = score(problem, code, sandbox=sandbox, limits=limits)
        except Exception as exc:  # a sandbox failure on one problem must not end the build
            reasons.append(f"{source}: scoring failed: {type(exc).__name__}: {exc}")
            continue
        if verdict.passed:
            exemplar = Exemplar(id=problem.id, split=split, description=problem.problem, code=problem.program(code),
                                planning=plan.plan if plan else "", code_from=source,
                                plan_from=plan.run if plan else "")
            return Verdict(problem, split, exemplar)
        failing = next((o for o in verdict.report["outcomes"] if not o["passed"]), {})
        reasons.append(f"{source}: failed a hidden test" + (f" ({str(failing.get('error'))[:160]})"
                                                             if failing.get("error") else ""))
    return Verdict(problem, split, None, "; ".join(reasons) or "no reference solution and no passing run")


def build_bank(
    dataset: str,
    splits: Iterable[str],
    out: str | Path,
    *,
    runs: Sequence[str | Path] = (),
    limit: int | None = None,
    data_dir: str | Path | None = None,
    source: str = "auto",
    sandbox: str = "local",
    test_timeout_s: float = 10.0,
    memory_mb: int = 1024,
    concurrency: int = 2,
    progress: bool | Any = True,
    console: Any = None,
    log: Callable[[str], None] | None = None,
) -> BuildStats:
    """Verify every problem of the training `splits` (the first `limit` of each) and write the bank to
    `out`. Refuses a split that is not a training split, and a run not on one, before any work."""
    start = time.perf_counter()
    spec, chosen = training_splits(dataset, splits)
    if concurrency < 1:
        raise BankError(f"concurrency must be at least 1 (got {concurrency})")
    check_out(out)
    solved = solved_in_runs(runs, spec)
    work: list[tuple[Problem, str]] = []
    sources = []
    for split in chosen:
        problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, source=source)
        sources.append(problems.source)
        work += [(problem, split) for problem in problems]
    limits = scoring_limits(test_timeout_s, memory_mb)

    verdicts = _verify_all(work, solved, spec.name, chosen, sandbox=sandbox, limits=limits,
                           concurrency=concurrency, progress=progress, console=console)
    exemplars = [v.exemplar for v in verdicts if v.exemplar is not None]
    failed = [{"id": v.problem.id, "split": v.split, "reason": v.reason} for v in verdicts if v.exemplar is None]
    with_plan = sum(1 for e in exemplars if e.planning)
    manifest = {
        "dataset": spec.name,
        "splits": chosen,
        "limit": limit,
        "data_source": sources[0] if len(set(sources)) == 1 else sources,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "counts": _counts(len(work), exemplars, failed, chosen),
        "failed": failed,
        "runs": [str(Path(r)) for r in runs],
        "verification": {"sandbox": sandbox, "test_timeout_s": test_timeout_s, "memory_mb": memory_mb},
        "seconds": round(time.perf_counter() - start, 1),
    }
    manifest = write_bank(out, exemplars, manifest)
    if log:
        log(f"bank {out}: {len(exemplars)} of {len(work)} problems verified, {len(failed)} failed, "
            f"{with_plan} with a plan ({manifest['seconds']:.0f} s)")
    return BuildStats(manifest=manifest, failed=failed)


def _verify_all(work: list[tuple[Problem, str]], solved: Mapping[str, list[Solved]], name: str, chosen: list[str], *,
                sandbox: str, limits: Any, concurrency: int, progress: bool | Any, console: Any) -> list[Verdict]:
    """Each problem's verdict, verified `concurrency` at a time, in dataset order (so the bank's order
    does not depend on timing)."""
    verdicts: list[Verdict] = []
    with _Bar(progress, console, len(work), f"verifying {name}/{','.join(chosen)}") as advance, \
            ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="bank-verify") as pool:
        futures = [pool.submit(verify, p, s, solved.get(p.id, []), sandbox=sandbox, limits=limits) for p, s in work]
        for future in futures:
            verdicts.append(future.result())
            advance(verdicts[-1].exemplar is not None)
    return verdicts


def _counts(problems: int, exemplars: list[Exemplar], failed: list[dict[str, Any]],
            chosen: list[str]) -> dict[str, Any]:
    with_plan = sum(1 for e in exemplars if e.planning)
    return {
        "problems": problems,
        "exemplars": len(exemplars),
        "failed": len(failed),
        "with_plan": with_plan,
        "without_plan": len(exemplars) - with_plan,  # no run given recorded a plan that led to passing code
        "code_from_runs": sum(1 for e in exemplars if e.code_from != "reference"),
        "per_split": {split: sum(1 for e in exemplars if e.split == split) for split in chosen},
    }


class _Bar:
    """A rich progress bar over the problems verified (or nothing), as the eval runner shows its own."""

    def __init__(self, enabled: bool | Any, console: Any, total: int, label: str) -> None:
        self.enabled, self.console, self.total, self.label = enabled, console, total, label
        self.verified = self.done = 0

    def __enter__(self) -> Callable[[bool], None]:
        self.progress = None
        if self.enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TextColumn("verified {task.fields[verified]}"), TimeElapsedColumn(),
                                     console=self.console)
            self.progress.start()
            self.task = self.progress.add_task(self.label, total=self.total, verified=0)
        return self.advance

    def advance(self, verified: bool) -> None:
        self.done += 1
        self.verified += verified
        if self.progress is not None:
            self.progress.update(self.task, completed=self.done, verified=self.verified)

    def __exit__(self, *exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()
