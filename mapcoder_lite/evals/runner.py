"""Running an eval: problems concurrently, each result streamed to disk as it finishes, resumable.

The run directory's files and their format are `mapcoder_lite.evals.rundir`'s; this module runs
the problems into one.

A run that is killed and started again with the same directory skips the problems that have a line,
repeats none and loses none: a line is written only once the problem is finished and scored (its
trajectory file first), and a last line cut short by the kill is dropped and redone. A graph
strategy's problem that was in flight goes on from its last checkpoint (LangGraph's SQLite
checkpointer, thread id = problem id), so the model calls it had finished are not made again; its
record says `resumed`, and its `seconds` count the last session only. A problem's checkpoints are
deleted once its line is written.

Failures: a problem whose strategy crashes or exceeds the problem timeout is recorded as failed with
its error, and the run goes on. An endpoint that cannot be reached, that does not serve the model
(404) or rejects the key (401) stops the run instead (`EndpointDown`): every later problem would
fail the same way, and recording them as failed would fill the results with a server problem and
make a resume skip them. The problems in flight at that moment are not recorded, so a resume
after the server is back runs them.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openai
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, ChannelVersions, Checkpoint, CheckpointMetadata
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from mapcoder_lite.evals.datasets import Problem, ProblemSet
from mapcoder_lite.evals.errors import EvalError
from mapcoder_lite.evals.rundir import (
    RunDir,
    RunSettings,
    Session,
    default_out_dir,
    done_records,
    prompt_versions,
    to_run,
)
from mapcoder_lite.evals.scoring import Score, score, scoring_limits
from mapcoder_lite.evals.strategies import Attempt, GraphStrategy, Strategy
from mapcoder_lite.graph.context import Context
from mapcoder_lite.llm import RoleCallError

LOG_EVERY_S = 300.0  # without a progress display, a line on where a run stands this often


def _say(console: Any, message: str, label: str = "") -> None:
    """A note for the user on the console (the label in yellow), or on stderr without one."""
    if console is not None:
        console.print(f"[yellow]{label}[/yellow]{message}" if label else f"[yellow]{message}[/yellow]")
    else:
        print(f"{label}{message}", file=sys.stderr, flush=True)


class EndpointDown(EvalError):
    """The model endpoint is unreachable or misconfigured: the run stops (see the module doc)."""


class LatestCheckpoints(AsyncSqliteSaver):
    """LangGraph's SQLite checkpointer keeping only each problem's latest step: a resume needs no
    history, and every checkpoint holds the whole trajectory so far (all checkpoints of one 25-call
    run came to 41 MB for a 1.3 MB trajectory). Our graphs have no delta channels, so the latest
    checkpoint alone restores the state. Only older rows go: checkpoint ids sort by time, and the
    next step's task writes can be saved before this checkpoint (LangGraph's async durability)."""

    async def aput(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: CheckpointMetadata,
                   new_versions: ChannelVersions) -> RunnableConfig:
        saved = await super().aput(config, checkpoint, metadata, new_versions)
        key = (saved["configurable"]["thread_id"], saved["configurable"]["checkpoint_ns"],
               saved["configurable"]["checkpoint_id"])
        async with self.lock:
            for table in ("checkpoints", "writes"):
                await self.conn.execute(f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_ns = ? "
                                        "AND checkpoint_id < ?", key)
            await self.conn.commit()
        return saved


class Interrupts:
    """Ctrl-C during runs: the first press starts no new problem and lets those in flight finish (a
    MapCoder problem on a CPU server can be an hour of work); the second stops at once.

    One per event loop, shared by the runs gathered on it (the pipeline's); inert outside the main
    thread, where signals cannot be handled.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, console: Any = None, *, install: bool = True) -> None:
        self.loop = loop
        self.console = console
        self.draining = False
        if install and threading.current_thread() is threading.main_thread():
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signal.SIGINT, self._pressed)

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop, console: Any = None) -> Interrupts:
        if not isinstance(found := getattr(loop, "_mapcoder_interrupts", None), cls):
            found = cls(loop, console)
            loop._mapcoder_interrupts = found  # type: ignore[attr-defined]
        return found

    def _pressed(self) -> None:
        if not self.draining:
            self.draining = True
            message = ("Ctrl-C: finishing the problems in flight and starting no new one; "
                       "Ctrl-C again stops at once (a graph run then goes on from its last finished step next time).")
            _say(self.console, message)
            return
        # Back to Python's own handler, then the signal again: KeyboardInterrupt out of the loop.
        self.loop.remove_signal_handler(signal.SIGINT)
        signal.raise_signal(signal.SIGINT)


def endpoint_is_down(error: RoleCallError) -> bool:
    """Errors every later problem would hit too: no connection, unknown model (404), bad key (401).
    A request timeout is not one of them: a long answer to one problem times out alone."""
    cause = error.__cause__
    if isinstance(cause, openai.APITimeoutError):
        return False
    if isinstance(cause, openai.APIConnectionError | openai.NotFoundError | openai.AuthenticationError):
        return True
    return "cannot connect" in error.reason


def _describe(error: BaseException) -> str:
    tail = "".join(traceback.format_exception(type(error), error, error.__traceback__)[-3:])
    return f"{type(error).__name__}: {error}\n{tail[-1500:]}".strip()


@dataclass
class RunSummary:
    """How a run (this session and the ones before it) stands."""

    out_dir: Path
    total: int  # problems selected that the strategy applies to
    done: int  # of them, with a result
    passed: int
    new: int  # finished in this session
    errors: int  # of the new ones, recorded with an error
    seconds: float  # this session
    not_applicable: int = 0  # selected problems the strategy skips (reference: no solution)
    interrupted: bool = False  # Ctrl-C: the problems in flight were finished, the rest not started

    @property
    def pass_at_1(self) -> float:
        return self.passed / self.done if self.done else 0.0


class Runner:
    """Runs one strategy over problems into one run directory."""

    def __init__(
        self,
        out_dir: str | Path,
        strategy: Strategy,
        settings: RunSettings,
        context: Context,
        *,
        concurrency: int = 4,
        problem_timeout_s: float | None = None,
        stop_early: bool = True,
        progress: Any = True,  # True: its own bar; a rich Progress: a line in it; False: none
        retry_errors: bool = False,
        limiter: contextlib.AbstractAsyncContextManager[Any] | None = None,
        console: Any = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
        ctrl_c_drains: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1 (got {concurrency})")
        self.dir = RunDir(out_dir)
        self.strategy = strategy
        self.settings = settings
        self.context = context
        self.concurrency = concurrency
        self.problem_timeout_s = problem_timeout_s
        self.stop_early = stop_early
        self.progress = progress
        self.console = console
        self.on_result = on_result
        # Problems recorded with an error (a timeout, an endpoint that went away) run again on resume.
        self.retry_errors = retry_errors
        # Shared by runs gathered together (a semaphore, or a slot of `slots.InOrder`), it bounds their
        # problems in flight as one budget.
        self.limiter = limiter
        self.limits = scoring_limits(context.test_timeout_s, context.memory_mb)
        # Only where the caller owns the event loop (the CLI commands, the pipeline): a library user's
        # loop (a server, a notebook) keeps its own Ctrl-C handling.
        self.ctrl_c_drains = ctrl_c_drains
        self.checkpointer: BaseCheckpointSaver | None = None  # open while run() runs a graph strategy

    async def run(self, problems: Sequence[Problem]) -> RunSummary:
        """Run the problems that have no result yet; returns where the run stands. Sets the running
        loop's default executor (threads for the sync graph nodes) to fit the concurrency."""
        applicable = self._applicable(problems)
        done, recorded = self._resume()
        todo = to_run(applicable, done)
        ledger = self._ledger(problems, applicable, done)
        loop = asyncio.get_running_loop()
        executor = self._size_executor(loop)
        interrupts = Interrupts.of(loop, self.console) if self.ctrl_c_drains else Interrupts(loop, install=False)
        queue: asyncio.Queue[Problem] = asyncio.Queue()
        for problem in todo:
            queue.put_nowait(problem)

        tasks: list[asyncio.Task[None]] = []
        checkpoints = contextlib.AsyncExitStack()
        try:
            if isinstance(self.strategy, GraphStrategy) and todo:
                await self._open_checkpoints(checkpoints, recorded)
            tasks = [asyncio.create_task(self._work(queue, ledger, interrupts))
                     for _ in range(min(self.concurrency, len(todo)))]
            with ledger.bar:
                await _until_done(tasks)
        except asyncio.CancelledError:
            _leave_threads(loop, executor)
            raise
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await checkpoints.aclose()
            self.checkpointer = None
            ledger.session.save(ledger.tally.new, ended=True)
        tally = ledger.tally
        return RunSummary(out_dir=self.dir.path, total=len(applicable), done=tally.done, passed=tally.passed,
                          new=tally.new, errors=tally.errors, seconds=round(ledger.session.elapsed, 3),
                          not_applicable=len(problems) - len(applicable),
                          interrupted=interrupts.draining and tally.done < len(applicable))

    def _applicable(self, problems: Sequence[Problem]) -> list[Problem]:
        applicable = [p for p in problems if self.strategy.applicable(p)]
        if not applicable:
            raise EvalError(f"the {self.strategy.name} strategy applies to none of the {len(problems)} problems"
                            + (" (the dataset has no reference solutions)" if self.strategy.name == "reference"
                               else ""))
        return applicable

    def _resume(self) -> tuple[dict[str, dict[str, Any]], set[str]]:
        """Prepare the run directory; returns the finished records by id (a retried error's line is
        removed from the results) and every problem that had a line: none of these may go on from a
        checkpoint."""
        recorded = self.dir.prepare(self.settings)
        done = done_records(recorded.values(), self.retry_errors)
        if len(done) < len(recorded):
            self.dir.drop(set(recorded) - set(done))
        return done, set(recorded)

    def _ledger(self, problems: Sequence[Problem], applicable: list[Problem],
                done: dict[str, dict[str, Any]]) -> _Ledger:
        """The session's bookkeeping, counting from the problems already done among those selected."""
        selected = {p.id for p in applicable}
        tally = Tally(done=sum(1 for i in done if i in selected),
                      passed=sum(1 for i, r in done.items() if i in selected and r.get("passed")))
        # Where the problems came from, and how many rows there held them (a file may repeat a row).
        origin = ({"data_source": problems.source, "rows_in_file": problems.rows(applicable)}
                  if isinstance(problems, ProblemSet) else None)
        session = self.dir.begin_session(len(applicable), origin)
        if len(versions := prompt_versions(session.run)) > 1:
            _say(self.console, f"{self.dir.path}: the prompts changed since this run began (prompts "
                       f"{', '.join(v[:8] for v in versions)}): its results mix them, and `report` says so. "
                       "For results of these prompts alone, run into a new --out.", "warning: ")
        bar = RunProgress(self.progress, self.console, total=len(applicable), done=tally.done,
                          label=f"{self.settings.dataset}/{self.settings.split} {self.settings.strategy}")
        return _Ledger(self.dir, session, tally, bar)

    def _size_executor(self, loop: asyncio.AbstractEventLoop) -> ThreadPoolExecutor:
        """Sync graph nodes and model calls run in the loop's default executor, which holds
        min(32, cores + 4) threads: on a small machine that, not --concurrency, would bound the
        requests in flight. Size it for every problem's parallel planner branches. Runs gathered on
        one loop (the pipeline's collection tracks and evals) add up their needs instead of each
        replacing the executor with one sized for itself alone."""
        branches = (self.context.k + 1) if self.strategy.name == "mapcoder" else 1
        workers = getattr(loop, "_mapcoder_workers", 4) + self.concurrency * branches
        executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="mapcoder-eval")
        loop.set_default_executor(executor)
        loop._mapcoder_workers = workers  # type: ignore[attr-defined]
        return executor

    async def _open_checkpoints(self, stack: contextlib.AsyncExitStack, recorded: set[str]) -> None:
        self.checkpointer = await stack.enter_async_context(
            LatestCheckpoints.from_conn_string(str(self.dir.checkpoints)))
        await self.checkpointer.setup()  # its tables are otherwise made on the first save only
        # A kill between writing a problem's line and deleting its checkpoints leaves them
        # behind; a retried problem must start over, not go on from its failed run.
        for problem_id in recorded:
            await self.checkpointer.adelete_thread(problem_id)

    async def _work(self, queue: asyncio.Queue[Problem], ledger: _Ledger, interrupts: Interrupts) -> None:
        """One worker: problems from the queue until it is empty or Ctrl-C drains the run."""
        while not interrupts.draining:
            try:
                problem = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            async with self.limiter or contextlib.nullcontext():
                if interrupts.draining:  # waited for a slot while the run was being stopped
                    return
                record = await self._one(problem)
            ledger.add(record)
            if self.on_result:
                self.on_result(record)
            if self.checkpointer is not None:  # recorded: its steps are no longer needed
                await self.checkpointer.adelete_thread(problem.id)

    async def _one(self, problem: Problem) -> dict[str, Any]:
        """Solve and score one problem; its result line, once its trajectory file is written."""
        attempt = Attempt()
        start = time.perf_counter()
        error = await self._solve(problem, attempt)
        solve_seconds = time.perf_counter() - start
        verdict: Score | None = None
        if error is None:
            verdict, error = await self._score(problem, attempt)
        record = _result_line(problem, attempt, verdict, error, seconds=time.perf_counter() - start,
                              solve_seconds=solve_seconds)
        record["trajectory_file"] = self.dir.save_trajectory(problem.id, {
            "id": problem.id,
            "input": dict(problem.graph_input()),
            "settings": self.settings.to_dict(),
            "trajectory": attempt.trajectory,
            "plans": attempt.plans,
            "code": attempt.code,
            "samples_passed": attempt.samples_passed,
            "passed": record["passed"],
            "passed_et": record["passed_et"],
            "error": error,
        })
        return record

    async def _solve(self, problem: Problem, attempt: Attempt) -> str | None:
        """Run the strategy into `attempt`; the error that ended it, or None. An endpoint that is down
        raises EndpointDown instead: the run stops."""
        try:
            solving = self.strategy.solve(problem, self.context, attempt, checkpointer=self.checkpointer)
            await (asyncio.wait_for(solving, self.problem_timeout_s) if self.problem_timeout_s else solving)
        except RoleCallError as exc:
            if endpoint_is_down(exc):
                raise EndpointDown(str(exc)) from exc
            return f"RoleCallError: {exc}"
        except TimeoutError:
            return f"timed out: the problem took more than {self.problem_timeout_s:g} s"
        except Exception as exc:  # a crash in one problem must not end the run
            return _describe(exc)
        return None

    async def _score(self, problem: Problem, attempt: Attempt) -> tuple[Score | None, str | None]:
        """The hidden tests' verdict on the attempt's code, or the error that kept it from one."""
        try:
            return await asyncio.to_thread(score, problem, attempt.code, sandbox=self.context.sandbox,
                                           limits=self.limits, stop_early=self.stop_early), None
        except Exception as exc:
            return None, "scoring failed: " + _describe(exc)


def _result_line(problem: Problem, attempt: Attempt, verdict: Score | None, error: str | None, *,
                 seconds: float, solve_seconds: float) -> dict[str, Any]:
    """A problem's line in results.jsonl (read_results checks the fields reports count on)."""
    return {
        "id": problem.id,
        "passed": bool(verdict and verdict.passed),
        "passed_et": (bool(verdict.passed_extra) if verdict and verdict.passed_extra is not None
                      else (False if problem.extra_tests else None)),
        "samples_passed": attempt.samples_passed,
        "code": attempt.code,
        "hidden": verdict.report if verdict else None,
        "extra": verdict.extra_report if verdict else None,
        "plans": attempt.plans,
        "direct": attempt.direct,  # the graph's direct attempt (Context.direct_first), else None
        "format_failures": attempt.format_failures,
        "llm_calls": attempt.llm_calls,
        "prompt_tokens": attempt.prompt_tokens,
        "completion_tokens": attempt.completion_tokens,
        "seconds": round(seconds, 3),
        "solve_seconds": round(solve_seconds, 3),
        "score_seconds": verdict.seconds if verdict else 0.0,
        "error": error,
        "resumed": attempt.resumed,
        "meta": problem.meta,
    }


async def _until_done(tasks: list[asyncio.Task[None]]) -> None:
    """Wait for the workers; the first to fail re-raises at once (EndpointDown, or a bug)."""
    if tasks:
        finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in finished:
            task.result()


def _leave_threads(loop: asyncio.AbstractEventLoop, executor: ThreadPoolExecutor) -> None:
    """Ctrl-C: asyncio.run would then wait for every thread's model call in flight (minutes on a CPU
    server). Finished problems are on disk and unfinished ones go on from their last checkpoint on
    resume, so the threads are left to end unobserved and asyncio.run gets a fresh executor to close."""
    executor.shutdown(wait=False, cancel_futures=True)
    loop.set_default_executor(ThreadPoolExecutor(max_workers=1))


@dataclass
class Tally:
    """A run's counts: finished (before this session too), passed, new this session, errors, tokens."""

    done: int = 0
    passed: int = 0
    new: int = 0
    errors: int = 0
    completion_tokens: int = 0

    def add(self, record: dict[str, Any]) -> None:
        self.done += 1
        self.new += 1
        self.passed += bool(record["passed"])
        self.errors += record["error"] is not None
        self.completion_tokens += int(record.get("completion_tokens") or 0)


def progress_bar(console: Any = None) -> Any:
    """The runner's rich Progress (done / total, pass rate so far, tokens per second); runs gathered on
    one loop share one, each as a line of its own, since rich shows one live display at a time."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    # The time left is estimated over the last 10 minutes: a graph run finishes a problem every few
    # seconds to minutes here, too seldom for rich's default 30-second window.
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("pass@1 {task.fields[rate]}"), TextColumn("{task.fields[tps]} tok/s"),
        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(), console=console,
        speed_estimate_period=600,
    )


def _time_left(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return "under a minute"
    return f"about {minutes} min" if minutes < 60 else f"about {minutes // 60} h {minutes % 60:02d} min"


class RunProgress:
    """One run's line in a progress display: its own (enabled=True), a shared one (a rich Progress
    passed in, started and stopped by its owner), or none (False). Without a display (`--no-progress`,
    output to a log file, a script run in the background) a plain line says where the run stands every
    LOG_EVERY_S, on the console or else on stderr: a run of hours must not be silent in its log."""

    def __init__(self, enabled: Any, console: Any, *, total: int, done: int, label: str) -> None:
        self.bar: Any = None
        self.owned = isinstance(enabled, bool)
        self.logs = enabled is False
        self.console = console
        self.label, self.total = label, total
        self.logged = time.monotonic()
        if enabled is False:
            return
        self.bar = progress_bar(console) if self.owned else enabled
        self.task = self.bar.add_task(label, total=total, completed=done, rate="-", tps="0")

    def update(self, tally: Tally, seconds: float) -> None:
        if self.bar is None:
            if self.logs and time.monotonic() - self.logged >= LOG_EVERY_S:
                self.logged = time.monotonic()
                if self.console is not None:
                    self.console.print(self.line(tally, seconds))
                else:
                    print(self.line(tally, seconds), file=sys.stderr, flush=True)
            return
        rate = f"{tally.passed / tally.done:.1%}" if tally.done else "-"
        tps = f"{tally.completion_tokens / seconds:.0f}" if seconds > 0 else "0"
        self.bar.update(self.task, completed=tally.done, rate=rate, tps=tps)

    def line(self, tally: Tally, seconds: float) -> str:
        """Where the run stands, as one plain line."""
        rate = f" ({tally.passed / tally.done:.1%})" if tally.done else ""
        errors = f", {tally.errors} errors" if tally.errors else ""
        left = ""
        if tally.new > 0 and tally.done < self.total:
            left = f"; {_time_left((self.total - tally.done) * seconds / tally.new)} left at this pace"
        return (f"{time.strftime('%H:%M:%S')} {self.label}: {tally.done}/{self.total} done, {tally.passed} "
                f"passed{rate}{errors}; {tally.new} this session in {seconds / 60:.0f} min{left}")

    def __enter__(self) -> RunProgress:
        if self.bar is not None and self.owned:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None and self.owned:
            self.bar.stop()


@dataclass
class _Ledger:
    """What a run keeps up to date as each problem finishes: results.jsonl, run.json's session, the counts, the bar."""

    dir: RunDir
    session: Session
    tally: Tally
    bar: RunProgress

    def add(self, record: dict[str, Any]) -> None:
        # No await in here: one coroutine finishes its line before another starts.
        self.dir.append(record)
        self.tally.add(record)
        self.bar.update(self.tally, self.session.elapsed)
        self.session.save(self.tally.new)



async def evaluate(
    dataset: str,
    *,
    split: str | None = None,
    strategy: str | Strategy = "mapcoder",
    context: Context | None = None,
    out_dir: str | Path | None = None,
    limit: int | None = None,
    data_dir: str | Path | None = None,
    data_file: str | Path | None = None,
    source: str = "auto",
    chat_models: Any = None,
    concurrency: int = 4,
    problem_timeout_s: float | None = None,
    progress: bool = True,
    console: Any = None,
    retry_errors: bool = False,
) -> RunSummary:
    """Load a benchmark, run a strategy on it into out_dir (resuming what is there), score it.

        summary = asyncio.run(evaluate("humaneval", strategy="direct", context=Context(model="m")))
    """
    from mapcoder_lite.evals.datasets import dataset_spec, load_problems
    from mapcoder_lite.evals.strategies import make_strategy

    spec = dataset_spec(dataset)
    split = split or spec.default_split
    problems = load_problems(spec.name, split, limit=limit, data_dir=data_dir, data_file=data_file, source=source)
    chosen = make_strategy(strategy, chat_models) if isinstance(strategy, str) else strategy
    context = context or Context()
    settings = RunSettings.make(spec.name, split, chosen, context)
    runner = Runner(out_dir or default_out_dir(settings), chosen, settings, context, concurrency=concurrency,
                    problem_timeout_s=problem_timeout_s, progress=progress, console=console,
                    retry_errors=retry_errors)
    return await runner.run(problems)
