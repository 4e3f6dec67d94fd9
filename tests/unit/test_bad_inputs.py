"""Bad inputs end with a clear message before any model call, naming what is wrong; nothing is lost."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.cli import app
from mapcoder_lite.evals.cli import report_command
from mapcoder_lite.evals.rundir import ResultsError, read_results
from mapcoder_lite.graph import Context, build_graph
from mapcoder_lite.problem import ProblemError, load_problem
from tests.scripted import scripted

DEAD_ENDPOINT = "http://127.0.0.1:9/v1"  # the discard port: nothing answers


def never(prompt: str) -> str:
    raise AssertionError("no model may be called for a bad input")


def test_a_sample_test_that_is_not_python_is_refused_before_any_model_call(tmp_path: Path) -> None:
    problem = {"problem": "Add two numbers.", "sample_tests": ["assert add(1, 2) = 3"], "entry_point": "add"}
    models = scripted(**{role: never for role in ("retriever", "planner", "confidence", "coder", "debugger")})
    with pytest.raises(ValueError, match=r"test 1 is not valid Python"):
        build_graph(chat_models=models).invoke(problem, context=Context())
    path = tmp_path / "problem.json"
    path.write_text(json.dumps(problem))
    with pytest.raises(ProblemError, match=rf"{path}: test 1 is not valid Python"):
        load_problem(path)
    result = CliRunner().invoke(app, ["solve", str(path), "--base-url", DEAD_ENDPOINT])
    assert result.exit_code == 2 and "not valid Python" in result.output


def test_a_problem_file_without_samples_is_refused_and_the_graph_never_calls_it_passing(tmp_path: Path) -> None:
    path = tmp_path / "problem.json"
    path.write_text(json.dumps({"problem": "Add two numbers.", "sample_tests": [], "entry_point": "add"}))
    with pytest.raises(ProblemError, match="no sample tests"):
        load_problem(path)
    # Through the API (a benchmark problem may have none): the first program comes back unverified.
    code = "```python\ndef add(a, b):\n    return a + b\n```"
    models = scripted(
        retriever=lambda p: "<root><problem><description>d</description><code>c</code><planning>p</planning>"
                            "</problem><algorithm>a</algorithm></root>",
        planner=lambda p: "a plan", confidence=lambda p: "<root><explanation>e</explanation>"
                                                        "<confidence>50</confidence></root>",
        coder=lambda p: code, debugger=never,
    )
    problem = {"problem": "Add two numbers.", "sample_tests": [], "entry_point": "add"}
    # One plan (k=1) is not scored: nothing to rank it against (Context.plan_diversity).
    for direct_first, roles in ((False, ["retriever", "planner", "coder"]), (True, ["coder"])):
        result = build_graph(chat_models=models).invoke(problem, context=Context(k=1, direct_first=direct_first))
        assert result["passed"] is False and "return a + b" in result["code"]
        assert [call["role"] for call in result["trajectory"]] == roles


def test_a_binary_problem_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "problem.md"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(ProblemError, match=rf"{path}: not a text file"):
        load_problem(path)


def test_eval_refuses_a_limit_below_one() -> None:
    result = CliRunner().invoke(app, ["eval", "--dataset", "mbpp", "--limit", "-1", "--base-url", DEAD_ENDPOINT])
    assert result.exit_code == 2 and "--limit" in result.output and "reference" not in result.output


def _report_app() -> typer.Typer:
    report = typer.Typer()
    report.command("report")(report_command)
    report.command("other")(lambda: None)  # a second command keeps `report` a subcommand
    return report


def _run_dir(path: Path, lines: list[str]) -> Path:
    path.mkdir()
    (path / "run.json").write_text(json.dumps({"settings": {"dataset": "toy", "strategy": "direct"},
                                               "problems_total": len(lines)}))
    (path / "results.jsonl").write_text("".join(line + "\n" for line in lines))
    return path


@pytest.mark.parametrize(("line", "says"), [
    ('{"id": "T/1", "passed": "yes"}', "'passed' is \"yes\", not bool"),
    ('{"id": 7, "passed": true}', "'id' is 7, not str"),
    ('{"passed": true}', "no 'id' field"),
    ('{"id": "T/1", "passed": true, "llm_calls": true}', "'llm_calls' is true, not int"),
    ('[1, 2]', "a JSON list, not an object"),
    ('{"id": "T/1", "pass', "not a JSON line"),
])
def test_report_refuses_an_ill_typed_or_cut_line_naming_file_and_line(tmp_path: Path, line: str, says: str) -> None:
    run = _run_dir(tmp_path / "run", ['{"id": "T/0", "passed": true}', line, '{"id": "T/2", "passed": false}'])
    with pytest.raises(ResultsError) as error:
        read_results(run / "results.jsonl")
    assert f"{run / 'results.jsonl'}:2: " in str(error.value) and says in str(error.value)
    result = CliRunner().invoke(_report_app(), ["report", str(run), "--chart", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and "results.jsonl:2" in result.output


def test_only_a_cut_last_line_is_forgiven(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "run", ['{"id": "T/0", "passed": true}', '{"id": "T/1", "pas'])
    assert [r["id"] for r in read_results(run / "results.jsonl")] == ["T/0"]


def test_a_corrupt_run_json_is_named(tmp_path: Path) -> None:
    run = _run_dir(tmp_path / "run", ['{"id": "T/0", "passed": true}'])
    (run / "run.json").write_text('{"settings": ')
    result = CliRunner().invoke(_report_app(), ["report", str(run), "--chart", str(tmp_path / "c.png")])
    assert result.exit_code == 2 and f"{run / 'run.json'}: not valid JSON" in result.output.replace("\n", "")


def test_a_misspelt_pipeline_key_names_its_section(tmp_path: Path) -> None:
    config = tmp_path / "pipeline.toml"
    config.write_text("[collect]\nlimt = 3\n")
    result = CliRunner().invoke(app, ["pipeline", str(config)])
    assert result.exit_code == 2 and "[collect]: unknown key(s) ['limt']" in result.output


def test_the_report_stage_prepares_no_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import mapcoder_lite.pipeline.run as pipeline_run

    def no_prepare(*args: object, **kwargs: object) -> None:
        raise AssertionError("the report stage must not prepare a model")

    monkeypatch.setattr(pipeline_run, "prepare_model", no_prepare)
    config = tmp_path / "pipeline.toml"
    config.write_text(f'workdir = "{tmp_path / "work"}"\n[models]\nstudent = "no-such-model"\n')
    result = CliRunner().invoke(app, ["pipeline", str(config), "--stages", "report", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "work" / "report.md").is_file()
