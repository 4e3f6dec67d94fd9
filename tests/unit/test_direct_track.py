"""traj_direct: the student's sampled direct answers (the prompt of the graph's first attempt), those that
pass the hidden tests kept as coder examples with exactly that prompt."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from mapcoder_lite.collection.cli import collect_command
from mapcoder_lite.evals import read_results
from mapcoder_lite.finetune.data import DUPLICATE, HIDDEN_FAILED
from mapcoder_lite.graph import Context
from mapcoder_lite.prompts import direct as direct_prompt
from mapcoder_lite.roles import AGENTS, TRACK_ROLES
from tests.commands import command_app
from tests.scripted import scripted
from tests.servers import Reply, completion, json_endpoint
from tests.toy_collection import (
    REFERENCE,
    SECRET,
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


def test_traj_direct_keeps_the_passing_direct_answers_with_the_direct_prompt(tmp_path: Path) -> None:
    seen: Counter[int] = Counter()
    lock = threading.Lock()

    def coder(prompt: str) -> str:
        """T/0 right every time; T/1 wrong on the hidden test first, then right; T/2 wrong on its samples."""
        with lock:
            seen[mark(prompt)] += 1
            n = seen[mark(prompt)]
        if mark(prompt) == 1 and n == 1:
            return sample_only(prompt)
        return code(2, "x") if mark(prompt) == 2 else solution(prompt)

    models = scripted(coder=coder)
    summary = collect("traj_direct", toy(3), tmp_path, models, STUDENT, samples=2, concurrency=1)

    records = {r["id"]: r for r in read_results(tmp_path / "results.jsonl")}
    assert sorted(records) == [f"T/{i}#{n}" for i in range(3) for n in (1, 2)]
    assert sorted(i for i, r in records.items() if r["passed"]) == ["T/0#1", "T/0#2", "T/1#2"]
    assert all(r["llm_calls"] == 1 for r in records.values())  # one call per run, no graph
    settings = json.loads((tmp_path / "run.json").read_text())["settings"]
    assert (settings["track"], settings["samples"], settings["temperature"]) == ("traj_direct", 2, 0.8)
    assert settings["models"] == settings["students"] == {"coder": "student-0.5b"}
    assert settings["k"] is settings["t"] is settings["direct_first"] is None  # no graph ran

    assert TRACK_ROLES["traj_direct"] == ("coder",)
    ((_, first_meta), (second, second_meta)) = sorted(kept(tmp_path, "coder"), key=lambda p: p[1]["problem"])
    assert (first_meta["problem"], second_meta["problem"]) == ("toy:T/0", "toy:T/1")
    assert second["completion"][0]["content"] == solution("MARK-1") and second_meta["sample"] == 2
    # Exactly the prompt the graph's direct attempt sends, the one the adapter will be asked.
    problem = toy(3)[1]
    expected = direct_prompt.build_messages(problem.problem, problem.sample_tests, "python", problem.entry_point)
    assert second["prompt"] == [{"role": m["role"], "content": m["content"]} for m in expected]
    reasons = {reason: entry["count"] for reason, entry in stats(tmp_path, "coder")["dropped"]["reasons"].items()}
    assert reasons == {DUPLICATE: 1, HIDDEN_FAILED: 3}  # T/0's second answer repeats its first
    assert {role: n for role, n in summary.examples.items() if n} == {"coder": 2}
    assert set(summary.examples) <= set(AGENTS)
    prompts = models["coder"].prompts
    assert len(prompts) == 6 and not any(str(SECRET) in p or REFERENCE in p or "T/1" in p for p in prompts)


def test_cli_collect_traj_direct_samples_the_coder_at_the_temperature(tmp_path: Path) -> None:
    data = mbpp_training_data(tmp_path)
    requests: list[dict[str, Any]] = []

    def respond(request: dict[str, Any]) -> Reply:
        requests.append(request)
        return 200, completion(request["model"], "```python\ndef f(x):\n    return x\n```")

    app = command_app("collect", collect_command)
    out = tmp_path / "direct"
    with json_endpoint(respond) as url:
        result = CliRunner().invoke(app, [
            "collect", "--track", "traj_direct", "--dataset", "mbpp", "--split", "train", "--samples", "3",
            "--base-url", url, "--lite", "--data-dir", str(data), "--out", str(out),
            "--no-progress", "--concurrency", "1", "--structured-outputs", "off"])
    assert result.exit_code == 0, result.output
    assert "2 problems of mbpp/train x 3 samples at temperature 0.8" in result.output
    assert "hidden tests passed by 6/6 runs" in result.output
    assert len(requests) == 6 and {(r["model"], r["temperature"]) for r in requests} == {("coder", 0.8)}
    sent = json.dumps(requests)
    assert str(SECRET) not in sent and REFERENCE not in sent and "MBPP/601" not in sent
    manifest = json.loads((out / "datasets" / "manifest.json").read_text())
    assert manifest["roles"]["coder"]["total"] == 2  # each problem's one answer, kept once


def test_a_resumed_collection_runs_the_errored_runs_again_only_when_asked(tmp_path: Path) -> None:
    failed = {"n": 0}

    def flaky(prompt: str) -> str:
        if mark(prompt) == 1 and not failed["n"]:
            failed["n"] += 1
            raise ValueError("a problem timeout, say")
        return solution(prompt)

    first = collect("traj_direct", toy(2), tmp_path, scripted(coder=flaky), STUDENT, samples=2, concurrency=1)
    assert (first.run.done, first.run.errors) == (4, 1)

    untouched = scripted(coder=solution)
    collect("traj_direct", toy(2), tmp_path, untouched, STUDENT, samples=2)
    assert untouched["coder"].prompts == []  # an error is a finished run unless asked

    again = scripted(coder=solution)
    summary = collect("traj_direct", toy(2), tmp_path, again, STUDENT, samples=2, retry_errors=True)
    assert [mark(p) for p in again["coder"].prompts] == [1]  # only the errored sample ran again
    records = {r["id"]: r for r in read_results(tmp_path / "results.jsonl")}
    assert len(records) == 4 and all(r["passed"] and r["error"] is None for r in records.values())
    assert summary.examples["coder"] == 2
