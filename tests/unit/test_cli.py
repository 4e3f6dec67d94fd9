"""The `mapcoder-lite solve` command: options, step-by-step output, summary and errors."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from mapcoder_lite.cli import app, make_context, solve_problem, summarize
from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.problem import load_problem
from tests.scripted import scripted
from tests.servers import free_port

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
runner = CliRunner()


def test_role_models_and_lite_build_the_context() -> None:
    context = make_context("http://h:1/v1", "base", ["coder=c-adapter", "debugger=d"], k=2, t=None)
    assert context.base_url == "http://h:1/v1" and context.k == 2 and context.t == Context.t
    assert context.model_for("coder") == "c-adapter" and context.model_for("planner") == "base"
    assert make_context(lite=True).model_for("retriever") == "retriever"
    with pytest.raises(typer.BadParameter, match="ROLE one of retriever"):
        make_context(role_model=["writer=x"])


def test_steps_are_shown_as_they_happen_and_summarised() -> None:
    good = (
        "```python\ndef two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n"
        "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n```"
    )
    models = scripted(
        retriever=lambda p: (
            "<root><problem><description>d</description><code>c</code>"
            "<planning>p</planning></problem><algorithm>Hashing</algorithm></root>"
        ),
        planner=lambda p: "1. remember seen values",
        confidence=lambda p: "<root><explanation>e</explanation><confidence>88</confidence></root>",
        coder=lambda p: good,
        debugger=lambda p: good,
    )
    out = io.StringIO()
    problem = dict(load_problem(EXAMPLES / "two_sum.md"))
    result = solve_problem(problem, make_context(k=1, direct_first=False, plan_diversity=False),
                           Console(file=out, width=200),
                           build_graph(models))
    printed = out.getvalue()
    for expected in (
        "retriever",
        "1 examples recalled; algorithm: Hashing",
        "confidence 88",
        "3/3 samples passed",
        "passed the samples",
    ):
        assert expected in printed
    summary = summarize(result, 1.0)
    assert summary["passed"] is True and summary["plan_confidence"] == 88 and summary["llm_calls"] == 4
    assert summary["code_from"] == "plan 1 of 1"
    assert summary["prompt_tokens"] > 0


def test_unreachable_endpoint_is_a_clear_error_not_a_traceback() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = runner.invoke(app, ["solve", str(EXAMPLES / "two_sum.json"), "--base-url", url, "--json"])
    assert result.exit_code == 3
    assert "coder agent: cannot connect" in result.output and "Traceback" not in result.output


def test_bad_problem_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"problem": "", "sample_tests": []}))
    result = runner.invoke(app, ["solve", str(path)])
    assert result.exit_code == 2 and "'problem' must be a non-empty string" in result.output


def test_demo_with_an_adapters_folder_without_adapters_says_so_before_preparing_anything(tmp_path: Path) -> None:
    (tmp_path / "logs").mkdir()
    result = runner.invoke(app, ["demo", str(EXAMPLES / "two_sum.md"), "--adapters", str(tmp_path)])
    assert result.exit_code == 2
    assert "no subfolder with a manifest.json and adapter files" in " ".join(result.output.split())  # rich wraps


@pytest.mark.parametrize(("cpus", "message"), [("abc", "expected core numbers"), ("4096", "this machine offers cores")])
def test_serve_rejects_cores_it_cannot_bind(cpus: str, message: str) -> None:
    result = runner.invoke(app, ["serve", "--cpus", cpus])
    assert result.exit_code == 2 and message in " ".join(result.output.split())


def test_serve_passes_vllm_args_through_and_refuses_the_ones_it_sets(monkeypatch: pytest.MonkeyPatch,
                                                                      tmp_path: Path) -> None:
    import mapcoder_lite.serving.cli as serving_cli
    from mapcoder_lite.serving.vllm import VLLMServerError

    made: list[dict] = []

    class Server:
        def __init__(self, model: Path, adapters: dict, **settings: object) -> None:
            made.append(settings)
            self.log_path = tmp_path / "log"

        def start(self) -> None:
            raise VLLMServerError("not started in a unit test")

        def stop(self) -> None:
            pass

    monkeypatch.setattr(serving_cli, "prepare_with_status", lambda *args: tmp_path)
    monkeypatch.setattr(serving_cli, "VLLMServer", Server)
    # Tool calling for the coding agent example: vLLM turns the model's tool-call text into tool calls.
    result = runner.invoke(app, ["serve", "--vllm-arg=--enable-auto-tool-choice",
                                 "--vllm-arg=--tool-call-parser=hermes"])
    assert result.exit_code == 1 and "not started in a unit test" in result.output
    assert made[0]["extra_args"] == ["--enable-auto-tool-choice", "--tool-call-parser=hermes"]

    result = runner.invoke(app, ["serve", "--vllm-arg=--port=9"])
    assert result.exit_code == 2 and "serve sets --port itself" in " ".join(result.output.split())
    assert len(made) == 1  # refused before any server was made


def test_a_direct_answer_that_passes_is_shown_as_one_step() -> None:
    good = (
        "```python\ndef two_sum(nums, target):\n    seen = {}\n    for i, x in enumerate(nums):\n"
        "        if target - x in seen:\n            return [seen[target - x], i]\n        seen[x] = i\n```"
    )
    out = io.StringIO()
    problem = dict(load_problem(EXAMPLES / "two_sum.md"))
    graph = build_graph(scripted(coder=lambda p: good))
    result = solve_problem(problem, make_context(), Console(file=out, width=200), graph)
    assert "direct  6 lines of code straight from the problem; 3/3 samples passed: done" in out.getvalue()
    summary = summarize(result, 1.0)
    assert summary["code_from"] == "the direct answer" and summary["llm_calls"] == 1 and summary["passed"]
