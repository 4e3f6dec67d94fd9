"""traj_self, self-distillation by rejection sampling: the student in every role, several runs of each
training problem at a temperature above 0, and every agent's examples from the runs that pass."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mapcoder_lite.collection import collect_problems
from mapcoder_lite.collection.cli import collect_command
from mapcoder_lite.evals import SettingsMismatch, read_results
from mapcoder_lite.finetune.data import DUPLICATE, HIDDEN_FAILED, NOT_FINAL, UNBALANCED
from mapcoder_lite.graph import Context
from mapcoder_lite.roles import AGENTS
from tests.commands import command_app
from tests.scripted import scripted
from tests.servers import Reply, completion, json_endpoint
from tests.toy_collection import (
    REFERENCE,
    SECRET,
    STRICT,
    base_scripts,
    code,
    collect,
    kept,
    mark,
    mbpp_training_data,
    sample_only,
    solution,
    stats,
    toy,
)

STUDENT = Context(model="student-0.5b", k=1, t=1, test_timeout_s=5.0)


def reasons(out: Path, role: str) -> dict[str, int]:
    return {reason: entry["count"] for reason, entry in stats(out, role)["dropped"]["reasons"].items()}


class Runs:
    """Which run of each toy problem the scripted agents answer: the retriever speaks first in every run,
    so its calls per problem count the runs (one run at a time here, concurrency 1)."""

    def __init__(self) -> None:
        self.count: Counter[int] = Counter()
        self.lock = threading.Lock()

    def retriever(self, prompt: str) -> str:
        with self.lock:
            self.count[mark(prompt)] += 1
        return STRICT

    def of(self, prompt: str) -> int:
        return self.count[mark(prompt)]


def student(runs: Runs) -> dict[str, Any]:
    """T/1: run 1 codes its plan right; run 2 codes it wrong and the debugger fixes it; run 3 plans to return
    x (scored 10) and fails the hidden test. T/2 fails the hidden test in every run, scoring its plan 90."""
    plans = {1: "1. add the constant", 2: "1. add the constant to x", 3: "1. return x unchanged"}

    def planner(prompt: str) -> str:
        return plans[runs.of(prompt)] if mark(prompt) == 1 else plans[1]

    def confidence(prompt: str) -> str:
        score = 10 if "unchanged" in prompt else 90
        return f"<root><explanation>judged</explanation><confidence>{score}</confidence></root>"

    def coder(prompt: str) -> str:
        if mark(prompt) == 2 or "unchanged" in prompt:
            return sample_only(prompt)
        return solution(prompt) if runs.of(prompt) == 1 else code(1, "x - 100")

    return scripted(**base_scripts(retriever=runs.retriever, planner=planner, confidence=confidence, coder=coder,
                                   debugger=lambda p: "1. add the constant instead\n" + solution(p)))


def test_traj_self_samples_each_problem_and_every_agent_learns_from_the_passing_runs(tmp_path: Path) -> None:
    models = student(Runs())
    summary = collect("traj_self", toy(3)[1:], tmp_path, models, STUDENT, samples=3, concurrency=1)

    # One run record (and trajectory) per sample; only T/1's first two pass the hidden test.
    records = {r["id"]: r for r in read_results(tmp_path / "results.jsonl")}
    assert sorted(records) == [f"T/{i}#{n}" for i in (1, 2) for n in (1, 2, 3)]
    assert {r["meta"]["sample_of"] for r in records.values()} == {"T/1", "T/2"}
    assert sorted(i for i, r in records.items() if r["passed"]) == ["T/1#1", "T/1#2"]
    assert (summary.run.done, summary.run.passed) == (6, 2)
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert (settings["track"], settings["samples"], settings["temperature"]) == ("traj_self", 3, 0.8)
    assert settings["teachers"] == {} and set(settings["students"]) == set(AGENTS)

    examples = {role: kept(tmp_path, role) for role in AGENTS}
    assert {role: len(pairs) for role, pairs in examples.items()} == {
        "retriever": 1, "planner": 2, "confidence": 2, "coder": 1, "debugger": 1}
    assert summary.examples == {role: len(pairs) for role, pairs in examples.items()}
    # Nothing from T/2, whose every run failed: its scores of 90 disagree with the outcome.
    assert {meta["problem"] for pairs in examples.values() for _, meta in pairs} == {"toy:T/1"}
    # The retrieval is the same in both passing runs: kept once. The coder's wrong code in run 2 is not the
    # passing program; the debugger's fix of it is (its prompt holds the failing code and the sample report).
    assert reasons(tmp_path, "retriever") == {DUPLICATE: 1, HIDDEN_FAILED: 4}
    assert reasons(tmp_path, "coder") == {NOT_FINAL: 1, HIDDEN_FAILED: 4}
    answer = {role: [e["completion"][0]["content"] for e, _ in pairs] for role, pairs in examples.items()}
    assert sorted(answer["planner"]) == ["1. add the constant", "1. add the constant to x"]
    assert answer["coder"] == [solution("MARK-1")]
    ((fix, fix_meta),) = examples["debugger"]
    assert fix_meta["sample"] == 2 and "x - 100" in fix["prompt"][1]["content"]
    assert answer["debugger"] == ["1. add the constant instead\n" + solution("MARK-1")]
    # Confidence: two passed plans scored 90 and one failed plan scored 10, balanced to one of each.
    assert sorted(meta["label"] for _, meta in examples["confidence"]) == ["failed", "passed"]
    assert {"passed": 1, "failed": 1, "balanced": True}.items() <= stats(tmp_path, "confidence")["labels"].items()
    assert reasons(tmp_path, "confidence")[UNBALANCED] == 1
    # Every example keeps its agent's normal prompt; no hidden test, reference or run id reached any agent.
    for pairs in examples.values():
        for example, _ in pairs:
            assert [m["role"] for m in example["prompt"]] == ["system", "user"]
    prompts = [p for m in models.values() for p in m.prompts]
    assert prompts and not any(str(SECRET) in p or REFERENCE in p or "T/1" in p for p in prompts)


def test_traj_self_resumes_by_sample_and_refuses_other_samples(tmp_path: Path) -> None:
    async def killed() -> None:
        task: asyncio.Task | None = None

        def kill_after_three(record: dict) -> None:
            if len(read_results(tmp_path / "results.jsonl")) == 3:
                task.cancel()

        task = asyncio.create_task(collect_problems(
            "traj_self", toy(2), dataset="toy", split="train", context=STUDENT, out_dir=tmp_path, samples=2,
            chat_models=scripted(**base_scripts()), progress=False, concurrency=1, on_result=kill_after_three))
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(killed())
    first = {r["id"] for r in read_results(tmp_path / "results.jsonl")}
    assert first == {"T/0#1", "T/0#2", "T/1#1"}

    again = scripted(**base_scripts())
    summary = collect("traj_self", toy(2), tmp_path, again, STUDENT, samples=2)
    assert [mark(p) for p in again["retriever"].prompts] == [1]  # T/1#2 only
    assert sorted(r["id"] for r in read_results(tmp_path / "results.jsonl")) == ["T/0#1", "T/0#2", "T/1#1", "T/1#2"]
    assert summary.run.done == 4 and summary.run.new == 1
    # Identical runs: each problem's answers once (the one class of confidence is balanced away).
    assert {role: n for role, n in summary.examples.items() if n} == {"retriever": 2, "planner": 2, "coder": 2}

    with pytest.raises(SettingsMismatch, match="samples"):
        collect("traj_self", toy(2), tmp_path, scripted(**base_scripts()), STUDENT, samples=3)
    with pytest.raises(SettingsMismatch, match="temperature"):
        collect("traj_self", toy(2), tmp_path, scripted(**base_scripts()), STUDENT, samples=2, temperature=0.5)


@pytest.mark.parametrize(("options", "message"), [
    ({"temperature": 0.0}, "temperature above 0"),
    ({"samples": 0}, "at least 1"),
    ({"split": "test"}, "collecting on test problems"),
])
def test_traj_self_refuses_a_zero_temperature_no_samples_and_a_test_split_before_any_call(
    tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    models = scripted(**base_scripts())
    split = options.pop("split", "train")
    with pytest.raises(ValueError, match=message):
        asyncio.run(collect_problems("traj_self", toy(1), dataset="toy", split=split, context=STUDENT,
                                     out_dir=tmp_path / "out", chat_models=models, progress=False, **options))
    assert not any(m.prompts for m in models.values()) and not (tmp_path / "out").exists()


def test_other_tracks_take_no_samples_and_refuse_a_test_split_too(tmp_path: Path) -> None:
    for track, options, message in (("traj_ret", {"samples": 2}, "samples apply to traj_self and traj_direct only"),
                                    ("traj_ret", {"temperature": 0.5}, "traj_self and traj_direct's own setting"),
                                    ("traj_debug", {"split": "test"}, "collecting on test problems")):
        with pytest.raises(ValueError, match=message):
            asyncio.run(collect_problems(track, toy(1), dataset="toy", context=STUDENT, out_dir=tmp_path / "out",
                                         chat_models=scripted(**base_scripts()), progress=False,
                                         **({"split": "train"} | options)))
    assert not (tmp_path / "out").exists()


def test_cli_collect_traj_self_sends_every_request_at_the_sampling_temperature(tmp_path: Path) -> None:
    data = mbpp_training_data(tmp_path)
    answers = {
        "retriever": "<root>\n<problem>\n<description>Echo.</description>\n<code>print(x)</code>\n"
                     "<planning>1. echo</planning>\n</problem>\n<algorithm>None.</algorithm>\n</root>",
        "planner": "1. Return x.",
        "confidence": "<root>\n<explanation>Simple.</explanation>\n<confidence>90</confidence>\n</root>",
        "coder": "```python\ndef f(x):\n    return x\n```",
    }
    requests: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> Reply:
        requests.append(request)
        return 200, completion(request["model"], answers[request["model"]])

    app = command_app("collect", collect_command)
    out = tmp_path / "self"
    with json_endpoint(respond) as url:
        result = CliRunner().invoke(app, [
            "collect", "--track", "traj_self", "--dataset", "mbpp", "--split", "train", "--samples", "2",
            "--base-url", url, "--lite", "--k", "1", "--t", "1", "--data-dir", str(data),
            "--out", str(out), "--no-progress", "--concurrency", "1", "--structured-outputs", "off"])
    assert result.exit_code == 0, result.output
    assert "2 problems of mbpp/train x 2 samples at temperature 0.8" in result.output
    assert "hidden tests passed by 4/4 runs" in result.output
    assert len(requests) == 4 * 4 and {r["temperature"] for r in requests} == {0.8}
    sent = json.dumps(requests)
    assert str(SECRET) not in sent and REFERENCE not in sent and "MBPP/601" not in sent
    records = read_results(out / "results.jsonl")
    assert sorted(r["id"] for r in records) == ["MBPP/601#1", "MBPP/601#2", "MBPP/602#1", "MBPP/602#2"]
    manifest = json.loads((out / "datasets" / "manifest.json").read_text())
    assert sorted(manifest["split"]["train"] + manifest["split"]["validation"]) == ["mbpp:MBPP/601", "mbpp:MBPP/602"]
    assert {role: n["total"] for role, n in manifest["roles"].items()} == {
        "retriever": 2, "planner": 2, "confidence": 0, "coder": 2, "debugger": 0}


def test_a_known_dataset_collects_on_its_training_splits_only(tmp_path: Path) -> None:
    # xCodeEval's validation split is its evaluation split: the registry names no training split of it.
    with pytest.raises(ValueError, match="collecting on test problems"):
        asyncio.run(collect_problems("traj_self", toy(1), dataset="xcodeeval", split="validation", context=STUDENT,
                                     out_dir=tmp_path / "out", chat_models=scripted(**base_scripts()),
                                     progress=False))
    assert not (tmp_path / "out").exists()
