"""The relabel pass: a teacher answers the student's confidence prompts knowing each plan's outcome, and fixes
its failing programs seeing the reference; examples keep the agent's normal prompt."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.collection import collect_problems
from mapcoder_lite.collection.cli import relabel_command
from mapcoder_lite.collection.relabel import debugger_messages, failing_attempts, relabel, relabel_work
from mapcoder_lite.evals import Problem, SettingsMismatch, read_results
from mapcoder_lite.evals.rundir import RunDir
from mapcoder_lite.finetune.data import (
    CITES_OUTCOME,
    COPIES_REFERENCE,
    DISAGREES,
    HIDDEN_FAILED,
    cites_outcome,
    extract,
)
from mapcoder_lite.graph import Context
from mapcoder_lite.roles import RELABEL, TEACHER_ROLES, TRACK_ROLES
from tests.commands import command_app
from tests.scripted import scripted
from tests.toy_collection import REFERENCE, SECRET, STRICT, base_scripts, code, mark, sample_only, solution, stats
from tests.toy_collection import kept as examples
from tests.toy_collection import toy as toy_problems

STUDENT = Context(model="student-0.5b", k=1, t=1, test_timeout_s=5.0)
TEACHER = Context(model="teacher-1.5b", base_url="http://teacher/v1", test_timeout_s=5.0)
NOTE = "What happened to this plan"


def reference(i: int) -> str:
    # Four lines: a fix that copies it shares a span the leak check catches (a two-line one would pass it).
    return f"def plus{i}(x):\n    total = x\n    total = total + {i}  # {REFERENCE}\n    return total\n"


def toy(count: int) -> list[Problem]:
    return [replace(p, reference=reference(i)) for i, p in enumerate(toy_problems(count))]


def student(failing: tuple[int, ...] = (1,)) -> dict[str, Any]:
    """T/1 (and the other problems `failing` names): the coder and the debugger both write wrong code, so
    its plan fails; the others' plans pass. The student's own scores (50) agree with neither outcome:
    alone, the run gives no confidence example."""
    def coder(prompt: str) -> str:
        return code(mark(prompt), "x - 100") if mark(prompt) in failing else solution(prompt)

    return scripted(**base_scripts(
        confidence=lambda p: "<root><explanation>maybe</explanation><confidence>50</confidence></root>",
        coder=coder, debugger=lambda p: "1. subtract instead\n" + code(mark(p), "x - 200")))


def confident(prompt: str) -> str:
    """The teacher's score as its note asks: high for a plan that passed, low for one that failed."""
    passed = "program passed the problem's hidden tests" in prompt
    why = "Step 1 adds the constant to x, which is what is asked." if passed else \
        "Step 1 never says what to add, so the code can drift from the statement."
    return f"<root>\n<explanation>{why}</explanation>\n<confidence>{95 if passed else 5}</confidence>\n</root>"


def teacher(**overrides: Any) -> dict[str, Any]:
    return scripted(**({"confidence": confident, "debugger": lambda p: "1. add the constant\n" + solution(p)}
                       | overrides))


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished traj_self collection: 2 samples each of T/1 (fails) and T/2 (passes)."""
    out = tmp_path_factory.mktemp("collections") / "traj_self-mbpp-train"
    # Recorded as MBPP's train split, a training split the registry names: the reference may be shown there.
    asyncio.run(collect_problems("traj_self", toy(3)[1:], dataset="mbpp", split="train", context=STUDENT,
                                 out_dir=out, chat_models=student(), progress=False, samples=2, concurrency=1))
    return out


@pytest.fixture(scope="module")
def two_failing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished traj_self collection of T/1 and T/3 (both fail) and T/2 (passes), one sample each."""
    out = tmp_path_factory.mktemp("collections") / "traj_self-mbpp-train"
    asyncio.run(collect_problems("traj_self", toy(4)[1:], dataset="mbpp", split="train", context=STUDENT,
                                 out_dir=out, chat_models=student(failing=(1, 3)), progress=False, samples=1,
                                 concurrency=1))
    return out


def run(sources: list[Path], out: Path, models: dict[str, Any], **options: Any) -> Any:
    context, problems = options.pop("context", TEACHER), options.pop("problems", toy(3))
    return asyncio.run(relabel(sources, context=context, problems=problems, out_dir=out, chat_models=models,
                               progress=False, **options))


def source_calls(source: Path, role: str) -> list[dict[str, Any]]:
    trajectories = sorted((source / "trajectories").glob("*.json"))
    return [c for path in trajectories for c in json.loads(path.read_text())["trajectory"] if c["role"] == role]


def test_the_registry_names_the_relabel_pass_and_the_roles_its_teacher_answers_for() -> None:
    assert TRACK_ROLES[RELABEL] == TEACHER_ROLES[RELABEL] == ("confidence", "debugger")


def test_relabel_labels_both_outcomes_and_rescues_failing_code_with_the_agents_normal_prompts(
        source: Path, tmp_path: Path) -> None:
    models = teacher()
    summary = run([source], tmp_path / "relabel", models)

    # One call per distinct teacher prompt: the two samples of a problem repeat theirs. T/1's plan failed and
    # T/2's passed (two confidence prompts); T/1's coder wrote failing code (one fix: the debugger's own
    # failing answer to it is a later attempt of the same plan, not asked).
    assert (summary.tasks, summary.done, summary.new, summary.passed, summary.errors) == (3, 3, 3, 3, 0)
    assert len(models["confidence"].prompts) == 2 and len(models["debugger"].prompts) == 1
    assert "x - 100" in models["debugger"].prompts[0] and "x - 200" not in models["debugger"].prompts[0]
    assert all(NOTE in p for p in models["confidence"].prompts)
    assert any("failed the problem's hidden tests" in p and "Passed 0 of 1 tests" in p
               for p in models["confidence"].prompts)  # the failing plan's first sample report
    assert all(reference(1).strip() in p for p in models["debugger"].prompts)

    out = tmp_path / "relabel"
    settings = json.loads((out / "run.json").read_text())["settings"]
    assert (settings["track"], settings["teachers"], settings["reference"]) == (
        RELABEL, {"confidence": "teacher-1.5b", "debugger": "teacher-1.5b"}, True)
    assert settings["sources"] == [str(source.resolve())] and settings["endpoint"] == "http://teacher/v1"
    for record in read_results(out / "results.jsonl"):  # every teacher call on record: prompt, answer, model
        (call,) = json.loads((out / record["trajectory_file"]).read_text())["trajectory"]
        assert call["model"] and call["response"] and call["messages"] != call["relabel"]["prompt"]

    # Confidence: both outcomes, each with the agent's exact prompt (its call record's), no note in it.
    confidence = examples(out, "confidence")
    assert sorted(meta["label"] for _, meta in confidence) == ["failed", "passed"]
    student_prompts = [c["messages"] for c in source_calls(source, "confidence")]
    for example, meta in confidence:
        assert example["prompt"] in student_prompts and NOTE not in json.dumps(example)
        assert meta["track"] == RELABEL and meta["relabels"].startswith(source.name)
    # Debugger: the fix passes the hidden tests; the prompt is the debugger's own, built as the graph builds
    # it (the source's debugger call, made on the coder's failing code, has exactly this prompt).
    debugger = examples(out, "debugger")
    assert len(debugger) == 1
    assert source_calls(source, "debugger")[0]["messages"] in [e["prompt"] for e, _ in debugger]
    for example, meta in debugger:
        assert REFERENCE not in json.dumps(example) and str(SECRET) not in json.dumps(example)
        assert meta["reference_overlap"]["lines"] < 3
    assert stats(out, "debugger")["reference_overlap"]["checked"] == 1
    assert stats(out, "debugger")["reference_overlap"]["dropped"] == 0

    # Extracted with the collection: the student's own scores (50) disagree with both outcomes, the teacher's
    # agree; one split by problem for both sources.
    both = extract([source, out], tmp_path / "both")
    assert both["confidence"]["examples"]["total"] == 2 and both["debugger"]["examples"]["total"] == 1
    assert both["confidence"]["dropped"]["reasons"][DISAGREES]["count"] == 4


def test_the_debugger_prompt_is_built_from_the_trajectory_as_the_graph_built_it(source: Path) -> None:
    rebuilt = []
    for path in sorted((source / "trajectories").glob("*.json")):
        saved = json.loads(path.read_text())
        for _, _, attempt in failing_attempts(saved["plans"]):
            rebuilt.append(debugger_messages(saved["input"], attempt, "Arithmetic"))
    recorded = [c["messages"] for c in source_calls(source, "debugger")]
    assert recorded and all(messages in rebuilt for messages in recorded)


def test_a_fix_copying_the_reference_or_failing_the_hidden_tests_is_dropped_and_counted(
        two_failing: Path, tmp_path: Path) -> None:
    def debugger(prompt: str) -> str:
        if mark(prompt) == 1:  # T/1's failing code: copy the reference
            return "1. keep a running total\n```python\n" + reference(1) + "```"
        return "1. special-case the sample\n" + sample_only(prompt)

    summary = run([two_failing], tmp_path / "relabel", teacher(debugger=debugger), roles="debugger", problems=toy(4))
    records = read_results(tmp_path / "relabel" / "results.jsonl")
    assert sorted(r["passed"] for r in records) == [False, True]  # the copy passes the hidden tests
    assert summary.examples["debugger"] == 0
    debugger_stats = stats(tmp_path / "relabel", "debugger")
    assert {reason: n["count"] for reason, n in debugger_stats["dropped"]["reasons"].items()} == {
        COPIES_REFERENCE: 1, HIDDEN_FAILED: 1}
    overlap = debugger_stats["reference_overlap"]
    assert overlap["dropped"] == 1 and overlap["max"]["lines"] >= 3


def test_a_confidence_explanation_citing_the_outcome_is_dropped(source: Path, tmp_path: Path) -> None:
    def told(prompt: str) -> str:
        return confident(prompt).replace("Step 1", "We were told the hidden tests passed; step 1")

    assert cites_outcome(told("program passed the problem's hidden tests"))
    assert not cites_outcome(confident("program passed the problem's hidden tests"))
    run([source], tmp_path / "relabel", teacher(confidence=told), roles=["confidence"])
    reasons = stats(tmp_path / "relabel", "confidence")["dropped"]["reasons"]
    assert reasons[CITES_OUTCOME]["count"] == 2 and not examples(tmp_path / "relabel", "confidence")


def _with_settings(source: Path, folder: Path, name: str | None = None, **changes: Any) -> Path:
    copy = folder / (name or source.name)
    shutil.copytree(source, copy)
    run_file = json.loads((copy / "run.json").read_text())
    run_file["settings"] |= changes
    (copy / "run.json").write_text(json.dumps(run_file))
    return copy


@pytest.mark.parametrize(("case", "message"), [
    ("test split", "collecting on test problems"),
    ("no sources", "no source runs"),
    ("unknown role", "unknown roles ['planner']"),
    ("no reference", "have no reference solution"),
    ("problem not given", "not among those given"),
    ("no hidden tests", "T/1 have none"),
    ("relabel as source", "not a collection of a track"),
    ("two splits", "different splits"),
])
def test_bad_input_is_refused_before_any_teacher_call(source: Path, tmp_path: Path, case: str, message: str) -> None:
    sources, options = [source], {}
    if case == "test split":
        sources = [_with_settings(source, tmp_path, split="test")]
    elif case == "no sources":
        sources = []
    elif case == "unknown role":
        options = {"roles": "confidence,planner"}
    elif case == "no reference":
        options = {"problems": [replace(p, reference=None) for p in toy(3)]}
    elif case == "no hidden tests":
        options = {"problems": [replace(p, hidden_tests=[]) if p.id == "T/1" else p for p in toy(3)]}
    elif case == "problem not given":
        options = {"problems": toy(2)}  # T/2 missing
    elif case == "relabel as source":
        sources = [_with_settings(source, tmp_path, track=RELABEL)]
    elif case == "two splits":
        sources = [source, _with_settings(source, tmp_path, "traj_self-mbpp-validation", split="validation")]
    models = teacher()
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        run(sources, tmp_path / "out", models, **options)
    assert not any(m.prompts for m in models.values()) and not (tmp_path / "out").exists()


def test_the_reference_is_refused_on_a_split_the_registry_does_not_name_for_training(
        source: Path, tmp_path: Path) -> None:
    models = teacher()
    # xCodeEval's validation split is its evaluation split: no reference of it is shown.
    sources = [_with_settings(source, tmp_path, dataset="xcodeeval", split="validation")]
    with pytest.raises(ValueError, match="collecting on test problems"):
        run(sources, tmp_path / "out", models)
    sources = [_with_settings(source, tmp_path / "toy", dataset="toy")]  # a dataset the registry does not know
    with pytest.raises(ValueError, match="needs a dataset the registry knows"):
        run(sources, tmp_path / "out", models)
    assert not any(m.prompts for m in models.values())
    # Without the reference nothing is shown, so nothing is refused.
    plain = teacher()
    assert run(sources, tmp_path / "plain", plain, reference=False).done == 3
    assert plain["debugger"].prompts and not any(REFERENCE in p for p in plain["debugger"].prompts)


def test_resuming_makes_no_call_twice_and_asks_again_only_what_ended_in_an_error(
        source: Path, tmp_path: Path) -> None:
    out = tmp_path / "relabel"

    async def killed() -> None:
        task: asyncio.Task | None = None

        def kill_after_one(record: dict) -> None:
            task.cancel()

        task = asyncio.create_task(relabel([source], context=TEACHER, problems=toy(3), out_dir=out,
                                           chat_models=teacher(), progress=False, concurrency=1,
                                           on_result=kill_after_one))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed())
    first = {r["id"] for r in read_results(out / "results.jsonl")}
    assert len(first) == 1

    calls = {"n": 0}

    def flaky(prompt: str) -> str:  # the first call of the session fails: recorded with its error
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("teacher hiccup")
        return "1. add the constant\n" + solution(prompt)

    again = teacher(debugger=flaky)
    summary = run([source], out, again, concurrency=1)
    made = len(again["confidence"].prompts) + len(again["debugger"].prompts)
    assert made == 2 and summary.new == 2 and summary.done == 3
    errors = [r for r in read_results(out / "results.jsonl") if r["error"]]
    assert [e["error"] for e in errors] == ["RuntimeError: teacher hiccup"]

    last = teacher()
    summary = run([source], out, last)
    assert summary.new == len(errors) and sum(len(m.prompts) for m in last.values()) == len(errors)
    ids = [r["id"] for r in read_results(out / "results.jsonl")]
    assert len(ids) == len(set(ids)) == 3 and set(first) <= set(ids)
    assert not any(r["error"] for r in read_results(out / "results.jsonl"))

    # Another teacher, or other sources, is another relabel: refused before any call.
    for options in ({"context": replace(TEACHER, model="another-teacher")}, {"reference": False}):
        models = teacher()
        with pytest.raises(SettingsMismatch):
            run([source], out, models, **options)
        assert not any(m.prompts for m in models.values())


def test_cli_relabels_through_the_teacher_endpoint(source: Path, tmp_path: Path) -> None:
    from tests.servers import completion, json_endpoint

    requests: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        requests.append(request)
        return 200, completion(request["model"], confident(request["messages"][-1]["content"]))

    app = command_app("relabel", relabel_command)
    with json_endpoint(respond) as url:
        result = CliRunner().invoke(app, [
            "relabel", "--from", str(source), "--teacher-model", "teacher-1.5b", "--teacher-base-url", url,
            "--roles", "confidence", "--out", str(tmp_path / "out"), "--no-progress",
            "--structured-outputs", "off"])
    assert result.exit_code == 0, result.output
    assert "2 teacher calls over 1 runs of mbpp/train, 2 to make" in result.output
    assert "2 of 2 teacher answers meet the bar" in result.output
    assert {r["model"] for r in requests} == {"teacher-1.5b"} and len(requests) == 2
    assert RunDir(tmp_path / "out").settings()["roles"] == ["confidence"]
    kept = examples(tmp_path / "out", "confidence")
    assert sorted((meta["model"], meta["label"]) for _, meta in kept) == [("teacher-1.5b", "failed"),
                                                                          ("teacher-1.5b", "passed")]

    result = CliRunner().invoke(app, ["relabel", "--from", str(source), "--teacher-model", "t", "--roles", "coder"])
    assert result.exit_code == 2 and "unknown roles ['coder']" in result.output


def test_relabel_work_lists_every_task_before_any_call(source: Path) -> None:
    work = relabel_work([source], problems=toy(3))
    assert (work.dataset, work.split) == ("mbpp", "train")
    assert sorted(t.role for t in work.tasks) == ["confidence", "confidence", "debugger"]
    assert all(t.meta["sample_of"] in ("T/1", "T/2") for t in work.tasks)
    assert {t.label for t in work.tasks if t.role == "confidence"} == {"passed", "failed"}
    # The algorithm the source's retriever named (the toy retriever's answer says "Arithmetic") is in the prompt.
    assert "<algorithm>Arithmetic</algorithm>" in STRICT
    assert all("## Algorithm\nArithmetic" in t.prompt[-1]["content"] for t in work.tasks if t.role == "debugger")
    assert all("Arithmetic" in t.prompt[-1]["content"] for t in work.tasks if t.role == "debugger")


def test_confidence_tasks_of_the_commoner_outcome_are_cut_to_the_rarer_ones_count(two_failing: Path) -> None:
    """Two of three problems fail: extraction would keep one failed confidence example per passed one, so the
    pass asks the teacher about one failing plan, the same one for the same seed, another for another."""
    def failed_one(seed: int) -> str:
        work = relabel_work([two_failing], roles="confidence", problems=toy(4), seed=seed)
        assert sorted(t.label for t in work.tasks) == ["failed", "passed"]
        return next(t.meta["sample_of"] for t in work.tasks if t.label == "failed")

    chosen = [failed_one(seed) for seed in range(8)]
    assert set(chosen) == {"T/1", "T/3"}  # the seed picks which, not the order of the runs
    assert chosen == [failed_one(seed) for seed in range(8)]
