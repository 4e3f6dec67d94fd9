"""Collection tracks: pass-based filters, supervised corrections, recorded settings, resume, the CLI."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.collection import SupervisorContext, collect_problems
from mapcoder_lite.collection.cli import collect_command, extract_command
from mapcoder_lite.collection.cost import CollectionCost
from mapcoder_lite.evals import SettingsMismatch, read_results
from mapcoder_lite.finetune.data import (
    COPIES_REFERENCE,
    DISAGREES,
    HIDDEN_FAILED,
    NOT_FIXING,
    NOT_STRICT,
    UNBALANCED,
)
from mapcoder_lite.graph import Context
from mapcoder_lite.graph.context import PAPER_T
from mapcoder_lite.prompts import retriever as retriever_prompt
from tests.scripted import InFlight, scripted
from tests.servers import free_port
from tests.toy_collection import (
    REFERENCE,
    SECRET,
    STRICT,
    base_scripts,
    code,
    collect,
    kept,
    mark,
    sample_only,
    solution,
    stats,
    toy,
)

LOOSE = "Sure!\n```xml\n<problem><description>Add</description><planning>add</planning></problem>\n```"


TEACHER = Context(model="student-0.5b", retriever_model="teacher-32b", retriever_base_url="http://teacher/v1",
                  k=1, t=1, test_timeout_s=5.0)


def test_traj_ret_keeps_strict_retrievals_of_runs_that_pass_and_records_teacher_and_student(tmp_path: Path) -> None:
    models = scripted(**base_scripts(
        retriever=lambda p: LOOSE if mark(p) == 3 else STRICT.replace("MARK", str(mark(p))),
        coder=lambda p: sample_only(p) if mark(p) == 2 else solution(p),
    ))
    summary = collect("traj_ret", toy(4), tmp_path, models, TEACHER)

    assert (summary.run.done, summary.run.passed) == (4, 3)  # T/2 passes its sample only
    examples = kept(tmp_path, "retriever")
    assert sorted(meta["problem"] for _, meta in examples) == ["toy:T/0", "toy:T/1"]
    for example, meta in examples:
        assert set(example) == {"prompt", "completion"} and meta["model"] == "ScriptedChatModel"
        assert [m["role"] for m in example["prompt"]] == ["system", "user"]
        assert retriever_prompt.is_strict(example["completion"][0]["content"], k=1)
    ret = stats(tmp_path, "retriever")
    assert ret["candidates"] == 4 and ret["examples"]["total"] == 2
    assert ret["dropped"]["reasons"] == {HIDDEN_FAILED: {"count": 1, "share": 0.25},
                                         NOT_STRICT: {"count": 1, "share": 0.25}}
    assert ret["mean_tokens"]["prompt"] > 0 and ret["mean_tokens"]["completion"] > 0
    # Confidence 90 is right for the three plans that passed, wrong for T/2's; with no failed plan scored
    # low, the three are balanced away.
    assert stats(tmp_path, "confidence")["dropped"]["reasons"] == {UNBALANCED: {"count": 3, "share": 0.75},
                                                                   DISAGREES: {"count": 1, "share": 0.25}}
    assert not (tmp_path / "datasets" / "debugger").exists()

    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["track"] == "traj_ret" and settings["teachers"] == {"retriever": "teacher-32b"}
    assert set(settings["students"].values()) == {"student-0.5b"} and "retriever" not in settings["students"]
    assert settings["endpoints"]["retriever"] == "http://teacher/v1" and settings["k"] == 1
    manifest = json.loads((tmp_path / "datasets" / "manifest.json").read_text())
    assert manifest["sources"][0]["settings"]["teachers"] == {"retriever": "teacher-32b"}
    assert not any(str(SECRET) in p for m in models.values() for p in m.prompts)


def test_traj_debug_keeps_turns_that_make_the_samples_pass_in_runs_that_pass(tmp_path: Path) -> None:
    def debugger(prompt: str) -> str:
        i = mark(prompt)
        if i == 0:
            return solution(prompt)  # code only: fixes it, but not the strict plan-then-code format
        if i == 1 and "return x * 7" not in prompt:
            return "1. multiply instead\n" + code(1, "x * 7")  # still failing: not a fixing turn
        if i == 2:
            return "1. special-case the sample\n" + sample_only(prompt)
        return f"1. add {i}\n" + solution(prompt)

    models = scripted(**base_scripts(coder=lambda p: code(mark(p), "x - 100"), debugger=debugger))
    context = Context(model="student", debugger_model="teacher", k=1, t=2, test_timeout_s=5.0)
    collect("traj_debug", toy(4), tmp_path, models, context)

    examples = kept(tmp_path, "debugger")
    assert sorted(meta["problem"] for _, meta in examples) == ["toy:T/1", "toy:T/3"]
    (t1,) = [e for e, meta in examples if meta["problem"] == "toy:T/1"]
    assert "x + 1" in t1["completion"][0]["content"] and "return x * 7" in t1["prompt"][1]["content"]
    assert stats(tmp_path, "debugger")["dropped"]["reasons"] == {
        NOT_STRICT: {"count": 1, "share": 0.2}, NOT_FIXING: {"count": 1, "share": 0.2},
        HIDDEN_FAILED: {"count": 1, "share": 0.2}}
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["teachers"] == {"debugger": "teacher"} and settings["t"] == 2


def test_traj_conf_keeps_the_teachers_scores_that_agree_with_each_plans_outcome(tmp_path: Path) -> None:
    scores = {0: 90, 1: 10, 2: 50, 3: 95, 4: 95}

    def confidence(prompt: str) -> str:
        i = mark(prompt)
        if i == 3:
            return "I am 95% sure this plan works."  # no score in the format
        return f"<root><explanation>plan {i}</explanation><confidence>{scores[i]}</confidence></root>"

    models = scripted(**base_scripts(
        confidence=confidence,
        coder=lambda p: sample_only(p) if mark(p) in (1, 4) else solution(p),
    ))
    context = Context(model="student-0.5b", confidence_model="teacher-1.5b",
                      confidence_base_url="http://teacher/v1", k=1, t=1, test_timeout_s=5.0)
    summary = collect("traj_conf", toy(5), tmp_path, models, context)

    assert (summary.run.done, summary.run.passed) == (5, 3)
    examples = kept(tmp_path, "confidence")
    # T/0 passed and scored 90; T/1 failed the hidden tests and scored 10: both agree with the outcome.
    assert sorted((meta["problem"], meta["label"]) for _, meta in examples) == [("toy:T/0", "passed"),
                                                                                 ("toy:T/1", "failed")]
    assert stats(tmp_path, "confidence")["dropped"]["reasons"] == {
        DISAGREES: {"count": 2, "share": 0.4}, NOT_STRICT: {"count": 1, "share": 0.2}}  # T/2, T/4; T/3
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir() if p.is_dir()) == ["confidence"]
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["track"] == "traj_conf" and settings["teachers"] == {"confidence": "teacher-1.5b"}
    assert "confidence" not in settings["students"] and set(settings["students"].values()) == {"student-0.5b"}
    assert settings["endpoints"]["confidence"] == "http://teacher/v1"


def test_traj_plan_code_supervised_keeps_corrected_answers_with_their_normal_prompts(tmp_path: Path) -> None:
    def planner(prompt: str) -> str:
        return "1. GOOD-PLAN: add the constant" if "Feedback from a reviewer" in prompt else "1. BAD-PLAN: return x"

    def coder(prompt: str) -> str:
        return solution(prompt) if "GOOD-PLAN" in prompt else sample_only(prompt)

    def supervisor(prompt: str) -> str:
        if "MARK-3" in prompt:
            return "no idea"
        agent = "planner" if "MARK-1" in prompt else "coder"
        return f"<root><analysis>a</analysis><agent>{agent}</agent><feedback>FEEDBACK: add it</feedback></root>"

    models = scripted(**base_scripts(planner=planner, coder=coder, supervisor=supervisor))
    context = SupervisorContext(model="student", supervisor_model="judge", supervisor_base_url="http://judge/v1",
                                correction_rounds=1, k=1, t=0, test_timeout_s=5.0)
    summary = collect("traj_plan_code_supervised", toy(4)[1:], tmp_path, models, context)

    assert summary.run.passed == 1  # T/1 after the planner's correction
    ((example, meta),) = kept(tmp_path, "planner")
    assert meta["problem"] == "toy:T/1" and meta["round"] == 1
    assert example["completion"][0]["content"] == "1. GOOD-PLAN: add the constant"
    assert "FEEDBACK" not in json.dumps(example["prompt"]) and "BAD-PLAN" not in json.dumps(example["prompt"])
    assert kept(tmp_path, "coder") == []  # T/2's corrected code still failed
    assert stats(tmp_path, "coder")["dropped"]["reasons"] == {HIDDEN_FAILED: {"count": 1, "share": 1.0}}
    by_id = {r["id"]: r for r in read_results(tmp_path / "results.jsonl")}
    assert by_id["T/3"]["format_failures"]["supervisor"] == 1 and by_id["T/3"]["error"] is None
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["supervisor"] == {"model": "judge", "base_url": "http://judge/v1", "correction_rounds": 1,
                                      "hidden_report": "failing"}
    assert settings["teachers"] == {"supervisor": "judge"} and settings["students"]["planner"] == "student"
    agents = [p for role, m in models.items() if role != "supervisor" for p in m.prompts]
    assert not any(str(SECRET) in p for p in agents)
    # What it spent: the supervisor's calls are the teacher's, the agents' the student's.
    cost = CollectionCost.of(tmp_path)
    assert (cost.teacher_calls, cost.student_calls) == (len(models["supervisor"].prompts), len(agents))
    assert cost.teacher_calls == 3 and (cost.runs, cost.passed, cost.errors) == (3, 1, 0)


def test_a_supervised_collection_resumes_with_its_supervisor_behind_another_address(tmp_path: Path) -> None:
    models = scripted(**base_scripts(supervisor=lambda p: "no idea"))
    context = SupervisorContext(model="student", supervisor_model="judge", supervisor_base_url="http://judge/v1",
                                correction_rounds=1, k=1, t=0, test_timeout_s=5.0)
    collect("traj_plan_code_supervised", toy(1), tmp_path, models, context)
    moved = replace(context, supervisor_base_url="http://127.0.0.1:8123/v1")
    collect("traj_plan_code_supervised", toy(2), tmp_path, scripted(**base_scripts()), moved)
    assert sorted(r["id"] for r in read_results(tmp_path / "results.jsonl")) == ["T/0", "T/1"]
    recorded = json.loads((tmp_path / "run.json").read_text())["settings"]["supervisor"]
    assert recorded["base_url"] == moved.supervisor_base_url
    with pytest.raises(SettingsMismatch, match="supervisor"):
        collect("traj_plan_code_supervised", toy(3), tmp_path, scripted(**base_scripts()),
                replace(moved, supervisor_model="another-judge"))


def referenced(count: int) -> list[Any]:
    """Toy problems whose reference solution is four lines (REFERENCE marks it)."""
    return [replace(p, reference=f"def plus{i}(x):\n    shifted = x + {i}\n    # {REFERENCE}\n    return shifted")
            for i, p in enumerate(toy(count))]


def test_reference_guided_supervision_drops_completions_copying_the_reference(tmp_path: Path) -> None:
    problems = referenced(3)[1:]

    def coder(prompt: str) -> str:
        if "Feedback from a reviewer" not in prompt:
            return sample_only(prompt)
        if mark(prompt) == 1:  # as if it had learned the reference by heart
            return f"```python\n{problems[0].reference}\n```"
        return solution(prompt)  # its own correct program: one line (the def) in common

    def supervisor(prompt: str) -> str:
        assert REFERENCE in prompt  # the supervisor sees each problem's reference
        return "<root><analysis>a</analysis><agent>coder</agent><feedback>FEEDBACK: add it</feedback></root>"

    models = scripted(**base_scripts(coder=coder, supervisor=supervisor))
    context = SupervisorContext(model="student", supervisor_model="judge", supervisor_base_url="http://judge/v1",
                                correction_rounds=1, k=1, t=0, test_timeout_s=5.0, supervisor_reference=True)
    summary = asyncio.run(collect_problems("traj_plan_code_supervised", problems, dataset="mbpp", split="train",
                                           context=context, out_dir=tmp_path, chat_models=models, progress=False))

    assert summary.run.passed == 2 and len(models["supervisor"].prompts) == 2
    agents = [p for role, m in models.items() if role != "supervisor" for p in m.prompts]
    assert agents and not any(REFERENCE in p or "shifted" in p for p in agents)
    ((example, meta),) = kept(tmp_path, "coder")
    assert meta["problem"] == "mbpp:T/2" and meta["reference_overlap"] == {"lines": 1, "chars": 13}
    assert REFERENCE not in json.dumps(example)
    coder_stats = stats(tmp_path, "coder")
    assert coder_stats["dropped"]["reasons"] == {COPIES_REFERENCE: {"count": 1, "share": 0.5}}
    threshold = {"lines": 3, "line_chars": 40, "chars": 120}
    assert coder_stats["reference_overlap"] == {"checked": 2, "dropped": 1, "threshold": threshold,
                                                "lines": {"0": 0, "1": 1, "2": 0, "3+": 1},
                                                "max": {"lines": 4, "chars": 65}}
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["supervisor"]["reference"] is True


def test_reference_guided_supervision_is_refused_before_any_model_call(tmp_path: Path) -> None:
    models = scripted(**base_scripts(supervisor=lambda p: "no idea"))
    context = SupervisorContext(model="student", supervisor_model="judge", supervisor_base_url="http://judge/v1",
                                k=1, t=0, supervisor_reference=True)
    cases = [
        ("traj_plan_code_supervised", referenced(2), "mbpp", "test", "collecting on test problems"),
        ("traj_plan_code_supervised", referenced(2), "humaneval", "test", "collecting on test problems"),
        ("traj_plan_code_supervised", referenced(2), "toy", "train", "a dataset the registry knows"),
        ("traj_plan_code_supervised", [*referenced(2), replace(toy(3)[2], reference=None)], "mbpp", "train",
         "1 of 3 problems of mbpp/train have no reference solution (T/2)"),
        ("traj_ret", referenced(2), "mbpp", "train", "applies to traj_plan_code_supervised only"),
    ]
    for track, problems, dataset, split, message in cases:
        with pytest.raises(ValueError, match=re.escape(message)):
            asyncio.run(collect_problems(track, problems, dataset=dataset, split=split, context=context,
                                         out_dir=tmp_path / "out", chat_models=models, progress=False))
    assert not any(m.prompts for m in models.values()) and not (tmp_path / "out").exists()


def test_a_killed_collection_resumes_without_loss_or_repeats_and_refuses_other_settings(tmp_path: Path) -> None:
    first = scripted(**base_scripts())

    async def killed() -> None:
        task: asyncio.Task | None = None

        def kill_after_two(record: dict) -> None:
            if len(read_results(tmp_path / "results.jsonl")) == 2:
                task.cancel()

        task = asyncio.create_task(collect_problems(
            "traj_ret", toy(4), dataset="toy", split="train", context=TEACHER, out_dir=tmp_path, chat_models=first,
            progress=False, concurrency=1, on_result=kill_after_two))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed())
    done_first = {r["id"] for r in read_results(tmp_path / "results.jsonl")}
    assert len(done_first) == 2

    second = scripted(**base_scripts())
    summary = collect("traj_ret", toy(4), tmp_path, second, TEACHER)
    assert {f"T/{mark(p)}" for p in second["retriever"].prompts} == {f"T/{i}" for i in range(4)} - done_first
    assert sorted(r["id"] for r in read_results(tmp_path / "results.jsonl")) == [f"T/{i}" for i in range(4)]
    # The datasets are extracted again from both sessions: every problem once.
    assert summary.examples["retriever"] == 4
    assert sorted(meta["problem"] for _, meta in kept(tmp_path, "retriever")) == [f"toy:T/{i}" for i in range(4)]

    with pytest.raises(SettingsMismatch, match="teachers"):
        collect("traj_ret", toy(4), tmp_path, scripted(**base_scripts()),
                Context(model="student-0.5b", retriever_model="other-teacher", retriever_base_url="http://teacher/v1",
                        k=1, t=1, test_timeout_s=5.0))


def cli() -> typer.Typer:
    app = typer.Typer()
    app.command("collect")(collect_command)
    app.command("extract")(extract_command)
    return app


def mbpp_dir(tmp_path: Path) -> Path:
    problems = tmp_path / "data" / "MBPPEval"
    problems.mkdir(parents=True)
    rows = [{"task_id": i, "text": f"Task {i}.", "code": "", "test_list": [f"assert f({i}) == {i}"],
             "test_setup_code": ""} for i in (11, 12, 601, 602)]  # two test problems, two training ones
    (problems / "MBPP.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path / "data"


def test_a_collection_records_budgets_levers_retrieval_and_one_made_before_still_resumes(tmp_path: Path) -> None:
    collect("traj_ret", toy(1), tmp_path, scripted(**base_scripts()), TEACHER)
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert settings["role_max_tokens"] == {role: TEACHER.max_tokens_for(role) for role in settings["models"]}
    assert settings["direct_first"] is settings["stop_repeats"] is settings["plan_diversity"] is False
    assert (settings["retrieval"], settings["bank"]) == ("recall", None)
    with pytest.raises(SettingsMismatch, match="role_max_tokens"):
        collect("traj_ret", toy(2), tmp_path, scripted(**base_scripts()), replace(TEACHER, coder_max_tokens=99))
    run = json.loads((tmp_path / "run.json").read_text())
    (tmp_path / "run.json").write_text(json.dumps(run | {"settings": settings | {"retrieval": "bank"}}))
    with pytest.raises(SettingsMismatch, match="retrieval"):  # a collection made on a bank stays on it
        collect("traj_ret", toy(2), tmp_path, scripted(**base_scripts()), TEACHER)

    # As a collection made before these were recorded: None, and it resumes.
    run["settings"] |= {"role_max_tokens": None, "direct_first": None, "stop_repeats": None, "plan_diversity": None,
                        "retrieval": None, "bank": None}
    (tmp_path / "run.json").write_text(json.dumps(run))
    collect("traj_ret", toy(2), tmp_path, scripted(**base_scripts()), TEACHER)
    assert sorted(r["id"] for r in read_results(tmp_path / "results.jsonl")) == ["T/0", "T/1"]
    assert json.loads((tmp_path / "run.json").read_text())["settings"]["role_max_tokens"] is None  # not known


def test_cli_collect_records_settings_and_stops_clearly_on_a_dead_endpoint(tmp_path: Path) -> None:
    out = tmp_path / "run"
    dead = f"http://127.0.0.1:{free_port()}/v1"
    result = CliRunner().invoke(cli(), [
        "collect", "--track", "traj_debug", "--dataset", "mbpp", "--split", "train", "--base-url", dead,
        "--model", "small", "--role-model", "debugger=big", "--role-base-url", f"debugger={dead}",
        "--data-dir", str(mbpp_dir(tmp_path)), "--out", str(out), "--no-progress", "--concurrency", "1",
    ])
    assert result.exit_code == 3, result.output
    assert "cannot connect" in result.output and "Traceback" not in result.output
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert settings["track"] == "traj_debug" and settings["teachers"] == {"debugger": "big"}
    assert settings["t"] == PAPER_T  # collection runs the paper's graph, its debugging rounds too


def test_cli_collect_rejects_bad_options_before_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)
    data = ["--dataset", "mbpp", "--data-dir", str(mbpp_dir(tmp_path)), "--out", str(tmp_path / "out")]
    cases = {
        ("--track", "traj_plan_code_supervised"): "DEEPSEEK_API_KEY",
        ("--track", "traj_ret", "--supervisor-model", "x"): "apply to traj_plan_code_supervised only",
        ("--track", "traj_nope"): "unknown track",
        ("--track", "traj_ret", "--role-api-key", "retriever"): "role_api_keys",
        ("--track", "traj_debug", "--split", "test"): "collecting on test problems",
        ("--track", "traj_ret", "--samples", "2"): "samples apply to traj_self and traj_direct only",
        ("--track", "traj_self", "--temperature", "0"): "temperature above 0",
        ("--track", "traj_self", "--samples", "0"): "at least 1",
        ("--track", "traj_self", "--split", "test"): "collecting on test problems",
        ("--track", "traj_ret", "--supervisor-reference"): "apply to traj_plan_code_supervised only",
        ("--track", "traj_plan_code_supervised", "--supervisor-base-url", "http://127.0.0.1:9/v1",
         "--supervisor-reference"): "have no reference solution",  # this MBPP's rows carry no code
    }
    for options, message in cases.items():
        split = [] if "--split" in options else ["--split", "train"]
        result = CliRunner().invoke(cli(), ["collect", *options, *split, *data])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_collections_side_by_side_share_one_limit_on_the_problems_in_flight(tmp_path: Path) -> None:
    slow = InFlight(solution)
    models = scripted(**base_scripts(retriever=slow))
    context = replace(TEACHER, retriever_model=None, retriever_base_url=None)

    async def both() -> list[Any]:
        limiter = asyncio.Semaphore(2)  # what the pipeline's collect stage shares across tracks and splits
        return await asyncio.gather(*(
            collect_problems("traj_ret", toy(4), dataset="toy", split="train", context=context,
                             out_dir=tmp_path / name, chat_models=models, progress=False, concurrency=4,
                             extract=False, limiter=limiter) for name in ("a", "b")))

    assert [summary.run.done for summary in asyncio.run(both())] == [4, 4]
    assert slow.most == 2  # two collections of concurrency 4 would allow 8
