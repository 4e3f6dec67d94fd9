"""`mapcoder-lite report` on two fabricated run directories: the table's numbers and the chart."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.evals.cli import report_command
from mapcoder_lite.evals.report import chart_labels, load_run, markdown_table, report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_run(path: Path, settings: dict, records: list[dict], seconds: list[float]) -> Path:
    path.mkdir(parents=True)
    run = {"settings": settings, "problems_total": 3,
           "sessions": [{"started": "2026-01-01T00:00:00+00:00", "seconds": s, "finished": 1} for s in seconds]}
    (path / "run.json").write_text(json.dumps(run))
    text = "".join(json.dumps(r) + "\n" for r in records)
    (path / "results.jsonl").write_text(text + '{"id": "cut off by a ki')  # a killed run's last line
    return path


def record(problem_id: str, passed: bool, passed_et: bool | None, failures: dict, calls: int,
           prompt: int, completion: int, error: str | None = None) -> dict:
    return {"id": problem_id, "passed": passed, "passed_et": passed_et, "samples_passed": passed,
            "format_failures": failures, "llm_calls": calls, "prompt_tokens": prompt,
            "completion_tokens": completion, "error": error}


@pytest.fixture
def runs(tmp_path: Path) -> list[Path]:
    plain = make_run(
        tmp_path / "plain-mapcoder",
        {"dataset": "humaneval", "split": "test", "strategy": "mapcoder", "k": 3, "t": 5,
         "models": dict.fromkeys(("retriever", "planner", "confidence", "coder", "debugger"), "qwen-0.5b")},
        [record("HumanEval/0", True, True, {"retriever": 1, "planner": 0, "coder": 2}, 8, 4000, 1000),
         record("HumanEval/1", False, False, {"retriever": 1, "planner": 0, "coder": 0}, 12, 6000, 2000),
         record("HumanEval/1", True, False, {"retriever": 0, "planner": 0, "coder": 0}, 10, 5000, 1000)],
        [60.0, 30.0],
    )
    lite = make_run(
        tmp_path / "lite-mapcoder",
        {"dataset": "humaneval", "split": "test", "strategy": "mapcoder", "k": 3, "t": 5,
         "models": {r: r for r in ("retriever", "planner", "confidence", "coder", "debugger")}},
        [record("HumanEval/0", True, True, {"retriever": 0, "coder": 0}, 6, 3000, 600),
         record("HumanEval/1", True, True, {"retriever": 0, "coder": 0}, 6, 3000, 600),
         record("HumanEval/2", False, False, {"retriever": 0, "coder": 1}, 9, 3000, 600, error="timed out")],
        [45.0],
    )
    return [plain, lite]


def test_table_puts_runs_side_by_side(runs: list[Path]) -> None:
    plain = load_run(runs[0])
    # The repeated HumanEval/1 counts once (its last line); the cut-off line is ignored.
    assert (plain.problems, plain.passed, plain.wall_seconds) == (2, 2, 90.0)
    table = markdown_table([plain, load_run(runs[1])])
    assert table.splitlines()[0] == "| metric | plain-mapcoder | lite-mapcoder |"
    expected_rows = [
        "| pass@1 | 100.0% (2/2) | 66.7% (2/3) |",
        "| pass@1 (ET) | 50.0% (1/2) | 66.7% (2/3) |",
        "| problems | 2 of 3 | 3 |",
        "| samples passed | 2/2 | 2/3 |",
        "| errors | 0 | 1 |",
        "| format failures: retriever | 1 | 0 |",
        "| format failures: planner | 0 | - |",
        "| format failures: coder | 2 | 1 |",
        "| mean LLM calls / problem | 9.00 | 7.00 |",
        "| mean prompt tokens / problem | 4,500 | 3,000 |",
        "| mean completion tokens / problem | 1,000 | 600 |",
        "| wall time | 1m30s | 45s |",
        "| throughput (problems / min) | 1.3 | 4.0 |",
        "| throughput (completion tokens / s) | 22.2 | 40.0 |",
        "| k / t | 3 / 5 | 3 / 5 |",
        "| models | qwen-0.5b | retriever=retriever, planner=planner, confidence=confidence, "
        "coder=coder, debugger=debugger |",
    ]
    for row in expected_rows:
        assert row in table


def test_settings_that_tell_runs_apart_get_a_row_only_where_they_differ(tmp_path: Path) -> None:
    base = {"dataset": "humaneval", "split": "test", "strategy": "mapcoder", "retrieval": "recall"}
    made = [make_run(tmp_path / name, base | changed, [record("HumanEval/0", True, None, {}, 1, 1, 1)], [1.0])
            for name, changed in (("a", {"structured_outputs": "auto"}), ("b", {"structured_outputs": "off"}),
                                  ("c", {"structured_outputs": "off", "retrieval": "bank"}))]
    table = markdown_table([load_run(path) for path in made])
    assert "| structured outputs | auto | off | off |" in table
    assert "| retrieval | recall | recall | bank |" in table
    assert "retrieval" not in markdown_table([load_run(path) for path in made[:2]])
    direct = make_run(tmp_path / "d", {"dataset": "humaneval", "split": "test", "strategy": "direct"},
                      [record("HumanEval/0", True, None, {}, 1, 1, 1)], [1.0])
    assert "retrieval" not in markdown_table([load_run(direct), load_run(made[0])])  # direct retrieves nothing


def test_a_data_file_with_repeated_rows_is_named_with_its_distinct_problems(runs: list[Path]) -> None:
    def with_rows(path: Path, rows: int) -> Path:
        run = json.loads((path / "run.json").read_text())
        (path / "run.json").write_text(json.dumps(run | {"rows_in_file": rows}))
        return path

    # plain finished 2 of its 3 problems, lite all 3; a file with no repeats reads as before.
    table = markdown_table([load_run(with_rows(runs[0], 5)), load_run(with_rows(runs[1], 3))])
    assert "| problems | 2 of 3 distinct problems (5 rows in the file) | 3 |" in table
    table = markdown_table([load_run(with_rows(runs[1], 4))])
    assert "| problems | 3 distinct problems (4 rows in the file) |" in table


def test_chart_names_a_partial_run_with_how_far_it_got(runs: list[Path]) -> None:
    assert chart_labels([load_run(runs[0]), load_run(runs[1])]) == ["plain-mapcoder\n(2 of 3 problems)",
                                                                     "lite-mapcoder"]


def test_report_writes_a_png_chart(runs: list[Path], tmp_path: Path) -> None:
    table, chart = report(runs, tmp_path / "charts" / "cmp.png")
    assert "| strategy | mapcoder | mapcoder |" in table
    assert chart is not None and chart.read_bytes()[:8] == PNG_MAGIC and chart.stat().st_size > 5000


def test_report_command_prints_the_table_and_saves_markdown(runs: list[Path], tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    app = typer.Typer()
    app.command("report")(report_command)
    app.command("other")(lambda: None)  # a second command, so the app keeps "report" as a subcommand
    markdown = tmp_path / "table.md"
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--chart", str(tmp_path / "c.png"),
                                      "--markdown", str(markdown)])
    assert result.exit_code == 0, result.output
    assert "| pass@1 | 100.0% (2/2) | 66.7% (2/3) |" in result.output
    assert markdown.read_text().startswith("| metric |")
    assert (tmp_path / "c.png").read_bytes()[:8] == PNG_MAGIC
    missing = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert missing.exit_code == 2 and "no run.json" in missing.output
    # Without --chart, the chart goes beside the runs, not into the folder the command ran in.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert CliRunner().invoke(app, ["report", *map(str, runs)]).exit_code == 0
    beside = Path(os.path.commonpath(runs)) / "report.png"
    assert beside.read_bytes()[:8] == PNG_MAGIC and not any(elsewhere.iterdir())


def test_common_scores_every_run_on_the_problems_all_of_them_finished(runs: list[Path], tmp_path: Path) -> None:
    # plain finished HumanEval/0 and /1, lite /0, /1 and /2: the common problems are /0 and /1.
    table, chart = report(runs, tmp_path / "common.png", common=True)
    assert "| pass@1 | 100.0% (2/2) | 100.0% (2/2) |" in table
    assert "| problems | 2 (finished by every run) | 2 (finished by every run) |" in table
    assert "| errors | 0 | 0 |" in table  # lite's timed-out HumanEval/2 is not among them
    assert "| wall time | - | - |" in table  # a whole run's time says nothing about a subset
    assert chart is not None and chart.read_bytes()[:8] == PNG_MAGIC
    app = typer.Typer()
    app.command("report")(report_command)
    app.command("other")(lambda: None)
    result = CliRunner().invoke(app, ["report", *map(str, runs), "--chart", str(tmp_path / "c.png"), "--common"])
    assert result.exit_code == 0 and "finished by every run" in result.output, result.output
