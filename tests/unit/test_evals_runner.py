"""The eval runner: streamed results, resume after a kill, failures recorded, endpoint down stops."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.evals import (
    EndpointDown,
    Problem,
    Runner,
    RunSettings,
    SettingsMismatch,
    evaluate,
    load_problems,
    make_strategy,
    read_results,
)
from mapcoder_lite.evals.cli import eval_command, report_command
from mapcoder_lite.evals.datasets import default_data_dir
from mapcoder_lite.evals.strategies import Strategy
from mapcoder_lite.graph import Context
from mapcoder_lite.graph.context import LEVERS
from mapcoder_lite.llm import RoleCallError
from tests.scripted import InFlight, scripted
from tests.servers import free_port

CONTEXT = Context(test_timeout_s=5.0, k=1, t=1).paper_graph()  # the paper's graph
SECRET = 987654  # in hidden tests only: must never reach a prompt


def toy_problems(count: int = 5) -> list[Problem]:
    return [
        Problem(
            id=f"T/{i}",
            problem=f"Write plus{i}(x) returning x + {i}. [MARK-{i}]",
            sample_tests=[f"assert plus{i}(1) == {1 + i}"],
            entry_point=f"plus{i}",
            hidden_tests=[f"assert plus{i}(10) == {10 + i}", f"assert plus{i}({SECRET}) == {SECRET + i}"],
        )
        for i in range(count)
    ]


def solution(prompt: str) -> str:
    i = int(re.search(r"MARK-(\d+)", prompt).group(1))
    return f"```python\ndef plus{i}(x):\n    return x + {i}\n```"


def marks(prompts: list[str]) -> list[int]:
    return [int(re.search(r"MARK-(\d+)", p).group(1)) for p in prompts]


def run(out: Path, strategy: Strategy, problems: list[Problem], context: Context = CONTEXT,
        **options: object) -> object:
    settings = RunSettings.make("toy", "test", strategy, context)
    runner = Runner(out, strategy, settings, context, progress=False, **options)
    return asyncio.run(runner.run(problems))


def lines(out: Path) -> list[dict]:
    text = (out / "results.jsonl").read_text()
    assert text == "" or text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_direct_run_streams_results_trajectories_and_settings(tmp_path: Path) -> None:
    models = scripted(coder=solution)
    summary = run(tmp_path, make_strategy("direct", models), toy_problems(), concurrency=3)
    assert (summary.done, summary.passed, summary.new, summary.errors) == (5, 5, 5, 0)
    records = lines(tmp_path)
    assert sorted(r["id"] for r in records) == [f"T/{i}" for i in range(5)]
    record = records[0]
    assert record["passed"] and record["hidden"]["passed"] == 2 and record["llm_calls"] == 1
    assert record["format_failures"] == {"coder": 0} and record["prompt_tokens"] > 0
    trajectory = json.loads((tmp_path / record["trajectory_file"]).read_text())
    assert trajectory["trajectory"][0]["role"] == "coder" and trajectory["input"]["entry_point"]
    run_json = json.loads((tmp_path / "run.json").read_text())
    assert run_json["settings"]["strategy"] == "direct" and run_json["settings"]["k"] is None
    assert run_json["settings"]["models"] == {"coder": CONTEXT.model_for("coder")}
    assert run_json["problems_total"] == 5 and run_json["sessions"][0]["finished"] == 5
    assert not any(str(SECRET) in prompt for prompt in models["coder"].prompts)


def test_runs_gathered_on_one_loop_share_a_progress_display_and_add_up_threads(tmp_path: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from mapcoder_lite.evals.runner import progress_bar

    strategy = make_strategy("direct", scripted(coder=solution))
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)
    console = Console(file=StringIO(), force_terminal=True, width=120)
    workers: list[int] = []

    async def both(bar: object) -> list[object]:
        runners = [Runner(tmp_path / name, strategy, settings, CONTEXT, progress=bar, concurrency=3)
                   for name in ("a", "b")]
        summaries = await asyncio.gather(*(r.run(toy_problems(4)) for r in runners))
        workers.append(asyncio.get_running_loop()._mapcoder_workers)
        return summaries

    with progress_bar(console) as bar:  # two live displays at once would raise rich's LiveError
        summaries = asyncio.run(both(bar))
    assert [s.passed for s in summaries] == [4, 4]
    assert [task.completed for task in bar.tasks] == [4, 4]
    assert workers == [4 + 3 + 3]  # each run's threads added to the loop's, not replacing them


def test_a_shared_limiter_bounds_the_problems_in_flight_across_gathered_runs(tmp_path: Path) -> None:
    slow = InFlight(solution)
    strategy = make_strategy("direct", scripted(coder=slow))
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)

    async def both() -> list[object]:
        limiter = asyncio.Semaphore(2)
        runners = [Runner(tmp_path / name, strategy, settings, CONTEXT, progress=False, concurrency=4,
                          limiter=limiter) for name in ("a", "b")]
        return await asyncio.gather(*(r.run(toy_problems(4)) for r in runners))

    assert [s.passed for s in asyncio.run(both())] == [4, 4]
    assert slow.most == 2  # 2 x concurrency 4 would allow 8


def test_runs_sharing_in_order_slots_start_the_earlier_runs_problems_first(tmp_path: Path) -> None:
    from mapcoder_lite.evals.slots import InOrder

    models = scripted(coder=InFlight(solution, seconds=0.05))  # the model records prompts as they come
    strategy = make_strategy("direct", models)
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)
    # More problems than workers: a worker of the first run asks for a slot again after the second run's
    # workers queued, and a first-come-first-served semaphore would serve those first.
    first, second = toy_problems(10)[:6], toy_problems(10)[6:]

    async def both() -> list[object]:
        slots = InOrder(2)
        runners = [Runner(tmp_path / name, strategy, settings, CONTEXT, progress=False, concurrency=4,
                          limiter=slots.slot(rank)) for rank, name in enumerate(("a", "b"))]
        return await asyncio.gather(runners[0].run(first), runners[1].run(second))

    assert [s.passed for s in asyncio.run(both())] == [6, 4]
    # The first run's problems, all of them first.
    assert sorted(marks(models["coder"].prompts)[:6]) == [0, 1, 2, 3, 4, 5]


def test_retry_errors_runs_only_the_problems_recorded_with_an_error_again(tmp_path: Path) -> None:
    flaky = {"n": 0}

    def sometimes(prompt: str) -> str:
        if "MARK-1" in prompt and flaky["n"] == 0:
            flaky["n"] += 1
            raise ValueError("a timeout, say")
        return solution(prompt)

    first = run(tmp_path, make_strategy("direct", scripted(coder=sometimes)), toy_problems(3))
    assert (first.done, first.errors) == (3, 1)
    again = scripted(coder=solution)
    settings = RunSettings.make("toy", "test", make_strategy("direct", again), CONTEXT)
    runner = Runner(tmp_path, make_strategy("direct", again), settings, CONTEXT, progress=False, retry_errors=True)
    summary = asyncio.run(runner.run(toy_problems(3)))
    assert marks(again["coder"].prompts) == [1]  # only the errored problem ran again
    records = lines(tmp_path)
    assert sorted(r["id"] for r in records) == ["T/0", "T/1", "T/2"] and all(r["error"] is None for r in records)
    assert summary.passed == 3


def test_each_session_records_its_prompts_and_a_run_resumed_across_a_prompt_change_says_so(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mapcoder_lite.evals.report import chart_labels, load_run, markdown_table
    from mapcoder_lite.prompts import prompts_sha256

    run(tmp_path, make_strategy("direct", scripted(coder=solution)), toy_problems(1))
    recorded = json.loads((tmp_path / "run.json").read_text())
    assert [s["prompts"] for s in recorded["sessions"]] == [prompts_sha256()]
    assert "mixed" not in markdown_table([load_run(tmp_path)]) and capsys.readouterr().err == ""

    recorded["sessions"][0]["prompts"] = "0" * 64  # as if begun before the prompts were edited
    (tmp_path / "run.json").write_text(json.dumps(recorded))
    run(tmp_path, make_strategy("direct", scripted(coder=solution)), toy_problems(2))
    assert "the prompts changed since this run began (prompts 00000000, " in capsys.readouterr().err
    stats = load_run(tmp_path)
    assert stats.prompts == ["0" * 64, prompts_sha256()]
    assert f"| prompts (sha256) | mixed: 00000000, {prompts_sha256()[:8]} |" in markdown_table([stats])
    assert chart_labels([stats]) == [f"{tmp_path.name}\n(mixed prompts)"]


def test_the_prompts_fingerprint_counts_code_and_texts_not_comments_or_docstrings() -> None:
    from mapcoder_lite.prompts import _code

    prompt = 'def build():\n    """Build it."""\n    return "Write the code."  # the text\n'
    reworded = 'def build():\n    """Build it, said otherwise."""\n\n    return "Write the code."\n'
    assert _code(prompt) == _code(reworded)
    assert _code(prompt) != _code(prompt.replace("Write the code.", "Write the program."))
    assert _code(prompt) != _code(prompt.replace("return", "yield"))


def test_without_a_progress_bar_a_console_gets_a_line_on_where_the_run_stands(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from rich.console import Console

    from mapcoder_lite.evals import runner as runner_module

    monkeypatch.setattr(runner_module, "LOG_EVERY_S", 0.0)  # a line after every problem, here
    log = io.StringIO()
    run(tmp_path, make_strategy("direct", scripted(coder=solution)), toy_problems(2), concurrency=1,
        console=Console(file=log, width=200))
    lines = log.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("toy/test direct: 1/2 done, 1 passed (100.0%); 1 this session in 0 min; "
                             "under a minute left at this pace")
    assert lines[1].endswith("toy/test direct: 2/2 done, 2 passed (100.0%); 2 this session in 0 min")


def test_the_time_left_is_the_problems_left_at_this_sessions_pace() -> None:
    from mapcoder_lite.evals.runner import RunProgress, Tally

    progress = RunProgress(False, None, total=100, done=40, label="mbpp/train traj_self")
    tally = Tally(done=40, passed=10, new=10)
    assert progress.line(tally, seconds=600).endswith("; 10 this session in 10 min; about 1 h 00 min left at this pace")
    tally.done, tally.new = 90, 60
    assert progress.line(tally, seconds=3600).endswith("; about 10 min left at this pace")
    tally.done, tally.new = 70, 10
    assert progress.line(tally, seconds=3000).endswith("; about 2 h 30 min left at this pace")
    assert "left" not in progress.line(Tally(done=40, new=0), seconds=60)  # no pace yet


def test_without_a_progress_bar_or_a_console_the_line_goes_to_stderr(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """A script that calls the runner in the background (benchmarks/levers.py) still logs where it stands."""
    from mapcoder_lite.evals import runner as runner_module

    monkeypatch.setattr(runner_module, "LOG_EVERY_S", 0.0)
    run(tmp_path, make_strategy("direct", scripted(coder=solution)), toy_problems(2), concurrency=1)
    logged = capsys.readouterr().err.splitlines()
    assert len(logged) == 2
    assert logged[1].endswith("toy/test direct: 2/2 done, 2 passed (100.0%); 2 this session in 0 min")


def test_endpoint_down_stops_the_run_and_a_rerun_finishes_without_repeats(tmp_path: Path) -> None:
    calls = {"n": 0}

    def flaky(prompt: str) -> str:
        calls["n"] += 1
        if calls["n"] > 2:
            raise RoleCallError("coder", "http://127.0.0.1:1/v1", "m", "cannot connect to the endpoint")
        return solution(prompt)

    with pytest.raises(EndpointDown, match="cannot connect"):
        run(tmp_path, make_strategy("direct", scripted(coder=flaky)), toy_problems(), concurrency=1)
    assert [r["id"] for r in lines(tmp_path)] == ["T/0", "T/1"]  # the failing problem is not recorded

    models = scripted(coder=solution)
    summary = run(tmp_path, make_strategy("direct", models), toy_problems(), concurrency=2)
    assert sorted(marks(models["coder"].prompts)) == [2, 3, 4]
    assert sorted(r["id"] for r in lines(tmp_path)) == [f"T/{i}" for i in range(5)]
    assert (summary.done, summary.passed, summary.new) == (5, 5, 3)


def test_kill_mid_run_and_a_truncated_last_line_lose_and_repeat_nothing(tmp_path: Path) -> None:
    first = scripted(coder=solution)
    strategy = make_strategy("direct", first)
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)

    async def killed() -> None:
        task: asyncio.Task | None = None

        def kill_after_two(record: dict) -> None:
            if len(lines(tmp_path)) == 2:
                task.cancel()

        runner = Runner(tmp_path, strategy, settings, CONTEXT, concurrency=2, progress=False,
                        on_result=kill_after_two)
        task = asyncio.create_task(runner.run(toy_problems(6)))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed())
    kept = lines(tmp_path)
    assert len(kept) == 2
    # A kill in the middle of a write leaves half a line without its newline.
    with open(tmp_path / "results.jsonl", "a") as handle:
        handle.write('{"id": "T/5", "passed": tr')

    second = scripted(coder=solution)
    run(tmp_path, make_strategy("direct", second), toy_problems(6), concurrency=2)
    done_first = {r["id"] for r in kept}
    assert {f"T/{i}" for i in marks(second["coder"].prompts)} == {f"T/{i}" for i in range(6)} - done_first
    final = lines(tmp_path)
    assert sorted(r["id"] for r in final) == [f"T/{i}" for i in range(6)]
    assert all(r["passed"] for r in final)
    assert len(read_results(tmp_path / "results.jsonl")) == 6


def test_a_crashing_or_slow_problem_is_recorded_as_failed_and_the_run_goes_on(tmp_path: Path) -> None:
    def script(prompt: str) -> str:
        if "MARK-1" in prompt:
            raise ValueError("the model exploded")
        if "MARK-2" in prompt:
            time.sleep(1.0)
        return solution(prompt)

    summary = run(tmp_path, make_strategy("direct", scripted(coder=script)), toy_problems(4), concurrency=2,
                  problem_timeout_s=0.4)
    by_id = {r["id"]: r for r in lines(tmp_path)}
    assert not by_id["T/1"]["passed"] and "ValueError: the model exploded" in by_id["T/1"]["error"]
    assert not by_id["T/2"]["passed"] and "timed out" in by_id["T/2"]["error"]
    assert by_id["T/0"]["passed"] and by_id["T/3"]["passed"] and by_id["T/0"]["error"] is None
    assert (summary.done, summary.passed, summary.errors) == (4, 2, 2)
    assert json.loads((tmp_path / by_id["T/1"]["trajectory_file"]).read_text())["error"]


def test_resuming_with_other_settings_is_refused(tmp_path: Path) -> None:
    run(tmp_path, make_strategy("direct", scripted(coder=solution)), toy_problems(1))
    with pytest.raises(SettingsMismatch, match="strategy: 'direct' there, 'cot' now"):
        run(tmp_path, make_strategy("cot", scripted(coder=solution)), toy_problems(1))


def test_a_run_resumes_against_the_same_models_behind_another_address(tmp_path: Path) -> None:
    strategy = make_strategy("direct", scripted(coder=solution))
    run(tmp_path, strategy, toy_problems(1))
    moved = replace(CONTEXT, base_url="http://127.0.0.1:8123/v1")
    runner = Runner(tmp_path, strategy, RunSettings.make("toy", "test", strategy, moved), moved, progress=False)
    asyncio.run(runner.run(toy_problems(2)))
    assert [r["id"] for r in lines(tmp_path)] == ["T/0", "T/1"]
    assert json.loads((tmp_path / "run.json").read_text())["settings"]["endpoint"] == moved.base_url
    other = replace(CONTEXT, model="another-model")
    runner = Runner(tmp_path, strategy, RunSettings.make("toy", "test", strategy, other), other, progress=False)
    with pytest.raises(SettingsMismatch, match="models"):
        asyncio.run(runner.run(toy_problems(2)))


def by_marker(table: dict[str, str]) -> Callable[[str], str]:
    return lambda prompt: next(answer for key, answer in table.items() if key in prompt)


def test_mapcoder_run_keeps_the_whole_trajectory_and_never_shows_hidden_tests(tmp_path: Path) -> None:
    wrong = "```python\ndef plus3(x):\n    return x\n```"
    models = scripted(
        retriever=lambda p: "<root><problem><description>d</description><code>c</code><planning>p</planning>"
                            "</problem><algorithm>Arithmetic</algorithm></root>",
        planner=lambda p: "1. add three",
        confidence=lambda p: "<root><explanation>e</explanation><confidence>90</confidence></root>",
        coder=lambda p: wrong,
        debugger=lambda p: "1. add three\n" + solution("MARK-3"),
    )
    run(tmp_path, make_strategy("mapcoder", models), toy_problems(4)[3:])
    (record,) = lines(tmp_path)
    assert record["passed"] and record["samples_passed"] is True and record["llm_calls"] == 5
    assert record["plans"][0]["confidence"] == 90 and len(record["plans"][0]["attempts"]) == 2
    assert set(record["format_failures"]) == {"retriever", "planner", "confidence", "coder", "debugger"}
    trajectory = json.loads((tmp_path / record["trajectory_file"]).read_text())
    assert [c["role"] for c in trajectory["trajectory"]] == ["retriever", "planner", "confidence", "coder",
                                                             "debugger"]
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["k"] == 1 and settings["t"] == 1 and set(settings["models"]) == set(models)
    for model in models.values():
        assert not any(str(SECRET) in prompt for prompt in model.prompts)


def graph_models(coder: Callable[[str], str]) -> dict:
    return scripted(
        retriever=lambda p: "<root><problem><description>d</description><code>c</code><planning>p</planning>"
                            "</problem><algorithm>Arithmetic</algorithm></root>",
        planner=lambda p: "1. add the number",
        confidence=lambda p: "<root><explanation>e</explanation><confidence>80</confidence></root>",
        coder=coder,
    )


def test_a_graph_problem_killed_mid_run_goes_on_from_its_checkpoint(tmp_path: Path) -> None:
    import sqlite3

    running: dict[str, asyncio.Task] = {}
    loop_of: dict[str, asyncio.AbstractEventLoop] = {}

    def coder_then_kill(prompt: str) -> str:
        if "MARK-1" in prompt:  # T/1 is killed while its coder call is in flight
            loop_of["loop"].call_soon_threadsafe(running["task"].cancel)
            time.sleep(0.3)
        return solution(prompt)

    strategy = make_strategy("mapcoder", graph_models(coder_then_kill))
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)
    problems = toy_problems(2)

    async def killed() -> None:
        loop_of["loop"] = asyncio.get_running_loop()
        runner = Runner(tmp_path, strategy, settings, CONTEXT, concurrency=1, progress=False)
        running["task"] = asyncio.create_task(runner.run(problems))
        with pytest.raises(asyncio.CancelledError):
            await running["task"]

    asyncio.run(killed())
    assert [r["id"] for r in lines(tmp_path)] == ["T/0"]
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as db:  # T/0 recorded: its steps are gone
        assert {t for (t,) in db.execute("select distinct thread_id from checkpoints")} == {"T/1"}

    second = graph_models(solution)
    run(tmp_path, make_strategy("mapcoder", second), problems)
    # Retrieval, planning and scoring of T/1 were done before the kill: only its coder runs again.
    assert [second[role].prompts for role in ("retriever", "planner", "confidence")] == [[], [], []]
    assert marks(second["coder"].prompts) == [1]
    records = {r["id"]: r for r in lines(tmp_path)}
    assert records["T/1"]["passed"] and records["T/1"]["resumed"] and not records["T/0"]["resumed"]
    assert records["T/1"]["llm_calls"] == 4  # the calls of both sessions
    trajectory = json.loads((tmp_path / records["T/1"]["trajectory_file"]).read_text())["trajectory"]
    assert [c["role"] for c in trajectory] == ["retriever", "planner", "confidence", "coder"]
    with sqlite3.connect(tmp_path / "checkpoints.sqlite") as db:
        assert db.execute("select count(*) from checkpoints").fetchone() == (0,)


def test_a_retried_problem_starts_over_even_if_its_checkpoint_survived(tmp_path: Path) -> None:
    running: dict[str, object] = {}

    def coder_then_kill(prompt: str) -> str:
        if "task" in running:
            running["loop"].call_soon_threadsafe(running.pop("task").cancel)
            time.sleep(0.3)
        return solution(prompt)

    strategy = make_strategy("mapcoder", graph_models(coder_then_kill))
    settings = RunSettings.make("toy", "test", strategy, CONTEXT)

    async def killed() -> None:
        running["loop"] = asyncio.get_running_loop()
        running["task"] = asyncio.create_task(Runner(tmp_path, strategy, settings, CONTEXT,
                                                     progress=False).run(toy_problems(1)))
        with pytest.raises(asyncio.CancelledError):
            await running["task"]

    asyncio.run(killed())
    # As if its line (an error) had been written and the kill came before its checkpoints were deleted.
    with open(tmp_path / "results.jsonl", "a") as handle:
        handle.write(json.dumps({"id": "T/0", "passed": False, "error": "timed out"}) + "\n")
    again = graph_models(solution)
    run(tmp_path, make_strategy("mapcoder", again), toy_problems(1), retry_errors=True)
    assert len(again["retriever"].prompts) == 1  # from the start, not from the surviving checkpoint
    (record,) = lines(tmp_path)
    assert record["passed"] and not record["resumed"] and record["llm_calls"] == 4


def test_a_run_from_before_checkpoints_resumes(tmp_path: Path) -> None:
    # Run directories made before checkpointing (or whose checkpoints file was removed) have finished
    # problems and no checkpoint tables: the clean-up of their threads must not fail on the empty file.
    run(tmp_path, make_strategy("mapcoder", graph_models(solution)), toy_problems(1))
    (tmp_path / "checkpoints.sqlite").unlink()
    again = graph_models(solution)
    run(tmp_path, make_strategy("mapcoder", again), toy_problems(2))
    assert [r["id"] for r in lines(tmp_path)] == ["T/0", "T/1"] and all(r["passed"] for r in lines(tmp_path))
    assert len(again["retriever"].prompts) == 1  # only the new problem ran


def test_a_kill_between_parallel_planners_keeps_the_finished_branch(tmp_path: Path) -> None:
    context = Context(test_timeout_s=5.0, k=2, t=1).paper_graph()  # two plans alike
    recalled = ("<root><problem><description>EX-A</description><code>c</code><planning>p</planning></problem>"
                "<problem><description>EX-B</description><code>c</code><planning>p</planning></problem>"
                "<algorithm>Arithmetic</algorithm></root>")
    running: dict[str, object] = {}
    planned_a = threading.Event()

    def planner(prompt: str) -> str:
        if "EX-B" in prompt and "task" in running:  # killed in flight once EX-A's branch has been saved
            planned_a.wait(5)
            time.sleep(0.2)
            running["loop"].call_soon_threadsafe(running.pop("task").cancel)
            time.sleep(0.3)
        planned_a.set()
        return "1. add the number"

    def models() -> dict:
        found = graph_models(solution)
        found["retriever"].script = lambda p: recalled
        found["planner"].script = planner
        return found

    strategy = make_strategy("mapcoder", models())
    settings = RunSettings.make("toy", "test", strategy, context)

    async def killed() -> None:
        running["loop"] = asyncio.get_running_loop()
        task = asyncio.create_task(Runner(tmp_path, strategy, settings, context, progress=False).run(toy_problems(1)))
        running["task"] = task
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed())
    second = models()
    strategy = make_strategy("mapcoder", second)
    asyncio.run(Runner(tmp_path, strategy, settings, context, progress=False).run(toy_problems(1)))
    assert second["retriever"].prompts == []
    assert ["EX-B" in prompt for prompt in second["planner"].prompts] == [True]  # EX-A's plan was kept
    (record,) = lines(tmp_path)
    assert record["passed"] and record["resumed"] and len(record["plans"]) == 2


@pytest.mark.skipif(default_data_dir() is None, reason="no ../shared/data beside the repository")
def test_reference_solutions_of_real_problems_score_one(tmp_path: Path) -> None:
    humaneval = {p.id: p for p in load_problems("humaneval")}
    mbpp = {p.id: p for p in load_problems("mbpp", "test")}
    # Picked for what they exercise: ET float tolerance (2), a dropped ET line (53), a docstring
    # comment (32), no samples (38), MBPP setup code (367).
    chosen = [humaneval[f"HumanEval/{i}"] for i in (0, 2, 32, 38, 53)] + [mbpp[f"MBPP/{i}"] for i in (11, 367)]
    # A generous time per test: on a loaded machine the sandbox's start alone took seconds, and a
    # timeout here would say nothing about the verdicts this test is for.
    summary = run(tmp_path, make_strategy("reference"), chosen, replace(CONTEXT, test_timeout_s=30.0), concurrency=4)
    records = lines(tmp_path)
    assert summary.pass_at_1 == 1.0 and summary.done == 7
    assert all(r["passed"] and r["error"] is None for r in records)
    assert all(r["passed_et"] for r in records if r["id"].startswith("HumanEval"))
    assert all(r["samples_passed"] in (True, None) for r in records)


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("eval")(eval_command)
    app.command("report")(report_command)
    return app


@pytest.mark.skipif(default_data_dir() is None, reason="no ../shared/data beside the repository")
def test_cli_eval_reference_then_report(tmp_path: Path) -> None:
    out = tmp_path / "mbpp-ref"
    result = CliRunner().invoke(cli(), ["eval", "--dataset", "mbpp", "--strategy", "reference", "--limit", "2",
                                        "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "pass@1 100.0% (2/2)" in result.output and len(lines(out)) == 2
    again = CliRunner().invoke(cli(), ["eval", "--dataset", "mbpp", "--strategy", "reference", "--limit", "2",
                                       "--out", str(out), "--no-progress"])
    assert again.exit_code == 0 and "0 solved now" in again.output and len(lines(out)) == 2
    # A problem recorded with an error (a request timeout) is done for a plain rerun, not with --retry-errors.
    records = lines(out)
    records[0] |= {"error": "TimeoutError: a request timed out", "passed": False}
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    retried = CliRunner().invoke(cli(), ["eval", "--dataset", "mbpp", "--strategy", "reference", "--limit", "2",
                                         "--out", str(out), "--no-progress", "--retry-errors"])
    assert retried.exit_code == 0 and "1 solved now" in retried.output, retried.output
    assert [(r["error"], r["passed"]) for r in lines(out)] == [(None, True)] * 2
    chart = tmp_path / "chart.png"
    shown = CliRunner().invoke(cli(), ["report", str(out), "--chart", str(chart)])
    assert shown.exit_code == 0 and "| pass@1 | 100.0% (2/2) |" in shown.output and chart.is_file()


def test_cli_eval_against_a_dead_endpoint_stops_with_a_clear_message(tmp_path: Path) -> None:
    problems = tmp_path / "data" / "MBPPEval"
    problems.mkdir(parents=True)
    rows = [{"task_id": i, "text": f"Task {i}.", "code": "", "test_list": [f"assert f({i}) == {i}"],
             "test_setup_code": ""} for i in (11, 12)]
    (problems / "MBPP.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli(), [
        "eval", "--dataset", "mbpp", "--strategy", "direct", "--base-url", f"http://127.0.0.1:{free_port()}/v1",
        "--data-dir", str(tmp_path / "data"), "--out", str(out), "--no-progress", "--concurrency", "1",
    ])
    assert result.exit_code == 3, result.output
    assert "cannot connect" in result.output and "Traceback" not in result.output
    assert read_results(out / "results.jsonl") == [] and (out / "run.json").is_file()


def test_cli_eval_scores_each_problem_of_a_file_with_repeated_rows_once(tmp_path: Path,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    # Laid out like MapCoder's data/APPS/selected150.jsonl, which repeats rows verbatim (one id three
    # times); `solutions` gives the reference strategy a program to score without a model.
    def row(number: int, program: str, tests: list[tuple[str, str]]) -> dict:
        io = [{"input": i, "output": [o]} for i, o in tests]
        return {"name": str(number), "description": f"Problem {number}.", "difficulty": "interview", "id": number,
                "sample_io": io[:1], "test_list": io, "starter_code": "", "solutions": [program]}

    add = row(4001, "print(sum(map(int, input().split())))", [("1 2", "3"), ("5 5", "10")])
    flip = row(4002, "print(input()[::-1])", [("abc", "cba"), ("xy", "yx")])
    double = row(4003, "print(2 * int(input()))", [("4", "8")])
    data = tmp_path / "data" / "APPS"
    data.mkdir(parents=True)
    (data / "selected150.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (add, flip, add, double, flip, add)))
    out = tmp_path / "apps-ref"
    result = CliRunner().invoke(cli(), ["eval", "--dataset", "apps", "--strategy", "reference", "--data-dir",
                                        str(tmp_path / "data"), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "3 distinct problems (6 rows in the file) of apps/test" in result.output
    assert "pass@1 100.0% (3/3)" in result.output
    assert f"{data / 'selected150.jsonl'}: dropped 3 lines" in caplog.text
    assert sorted(r["id"] for r in lines(out)) == ["APPS/4001", "APPS/4002", "APPS/4003"]
    run_record = json.loads((out / "run.json").read_text())
    assert (run_record["problems_total"], run_record["rows_in_file"]) == (3, 6)
    shown = CliRunner().invoke(cli(), ["report", str(out), "--chart", str(tmp_path / "chart.png")])
    assert shown.exit_code == 0 and "| problems | 3 distinct problems (6 rows in the file) |" in shown.output


@pytest.mark.skipif(default_data_dir() is None, reason="no ../shared/data beside the repository")
def test_python_api_evaluate(tmp_path: Path) -> None:
    summary = asyncio.run(evaluate("mbpp", split="validation", strategy="reference", limit=2, out_dir=tmp_path,
                                   progress=False))
    assert (summary.done, summary.pass_at_1, summary.total) == (2, 1.0, 2)
    assert [r["id"] for r in sorted(lines(tmp_path), key=lambda r: r["id"])] == ["MBPP/511", "MBPP/512"]


@pytest.mark.parametrize("drains", [False, True])
def test_only_a_runner_that_owns_the_loop_takes_over_ctrl_c(tmp_path: Path, drains: bool) -> None:
    # A library user's loop (a server, a notebook) keeps its own SIGINT handling; the CLI's runner
    # installs the drain-then-stop handler.
    strategy = make_strategy("direct", scripted(coder=solution))

    async def main() -> tuple[object, object]:
        before = signal.getsignal(signal.SIGINT)
        runner = Runner(tmp_path, strategy, RunSettings.make("toy", "test", strategy, CONTEXT), CONTEXT,
                        progress=False, ctrl_c_drains=drains)
        await runner.run(toy_problems(1))
        return before, signal.getsignal(signal.SIGINT)

    before, after = asyncio.run(main())
    assert (after is not before) == drains


def test_a_mapcoder_run_from_before_the_levers_resumes_only_as_the_papers_graph(tmp_path: Path) -> None:
    strategy = make_strategy("mapcoder", scripted())
    paper = RunSettings.make("toy", "test", strategy, Context().paper_graph()).to_dict()
    for key in LEVERS:
        del paper[key]  # what run.json held before these settings existed
    assert RunSettings.make("toy", "test", strategy, Context().paper_graph()).differences(paper) == []
    assert RunSettings.make("toy", "test", strategy, Context()).differences(paper) == [
        f"{lever}: False there, True now" for lever in LEVERS]


def test_a_run_from_before_role_budgets_had_max_tokens_for_every_role(tmp_path: Path) -> None:
    strategy = make_strategy("mapcoder", scripted())
    legacy = RunSettings.make("toy", "test", strategy, Context(max_tokens=256)).to_dict()
    del legacy["role_max_tokens"]  # every role's budget was max_tokens, 256 <= each role's default
    assert RunSettings.make("toy", "test", strategy, Context(max_tokens=256)).differences(legacy) == []
    legacy["max_tokens"] = 1536
    assert any(d.startswith("role_max_tokens:") for d in
               RunSettings.make("toy", "test", strategy, Context()).differences(legacy))
