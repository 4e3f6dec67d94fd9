"""One agent's answers before and after fine-tuning, on the very prompts it saw in recorded runs.

    mapcoder-lite serve --model qwen2.5-coder-0.5b-instruct --adapters runs/repro/adapters   # port 8000
    python benchmarks/role_replay.py runs/direct-vs-mapcoder/eval/*/mapcoder --role confidence \\
        --model qwen2.5-coder-0.5b-instruct --model confidence --limit 40 --out runs/bench/replay-confidence

A full graph run changes what every later agent sees once one agent answers differently, so a few
problems say little about one agent. This replays each recorded call of `--role` (first pass, not
refused) from eval or collection run directories, with exactly its recorded messages, against each
`--model` served at `--base-url` (a base model's name or an adapter's name: vLLM picks the adapter
by the request's model), at temperature 0 and the run's own max_tokens. Per model it counts the
answers in the role's strict format (what the paper reports falling to zero after fine-tuning:
`mapcoder_lite.finetune.data.is_strict`) and the ones the graph's parser can read at all; for the
confidence agent also how often a score agrees with how its plan turned out in the recorded run
(>= 70 for a plan whose code passed the hidden tests, <= 30 for one that failed: the extraction's
rule) and the mean score each way. Prompts from test splits are never in the training data.

Answers stream to OUT/responses.jsonl (a rerun skips what is there); the table goes to stdout and
OUT/table.md, the chart to OUT/chart.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.collection.records import round_of  # noqa: E402
from mapcoder_lite.evals.rundir import RUN_FILE, RunDir  # noqa: E402
from mapcoder_lite.files import cut_partial_line, read_jsonl  # noqa: E402
from mapcoder_lite.finetune.data import (  # noqa: E402
    CONFIDENCE_FAIL_MAX,
    CONFIDENCE_PASS_MIN,
    is_readable,
    is_strict,
    plan_of,
    plan_outcome,
)
from mapcoder_lite.graph.context import ROLES, Context  # noqa: E402
from mapcoder_lite.llm import RoleCallError, RoleModels  # noqa: E402
from mapcoder_lite.prompts import confidence as confidence_prompt  # noqa: E402


@dataclass
class Prompt:
    key: str  # "<run dir>|<problem>|<call index>": what a rerun skips
    run: str
    problem: str
    messages: list[dict[str, str]]
    language: str
    k: int | None
    max_tokens: int
    label: str  # confidence: "passed" | "failed" | "unknown"; other roles: "-"


def recorded_prompts(run_dir: Path, role: str, limit: int | None) -> Iterator[Prompt]:
    """Every first-pass, answered call of `role` in the run's first `limit` problems (file order)."""
    run = RunDir(run_dir)
    settings = run.settings()
    records = [r for r in run.records() if r.get("trajectory_file") and not r.get("error")]
    for record in records[:limit]:
        saved = run.read_trajectory(record)
        if saved is None:
            continue
        language = (saved.get("input") or {}).get("language") or "python"
        for index, call in enumerate(saved.get("trajectory") or []):
            if call["role"] != role or round_of(call) != 0 or call.get("error"):
                continue
            label = "-"
            if role == "confidence":
                plan = plan_of(call["messages"], saved.get("plans") or [])
                outcome = None if plan is None else plan_outcome(plan, saved.get("code") or "", bool(record["passed"]))
                label = "unknown" if outcome is None else ("passed" if outcome else "failed")
            yield Prompt(key=f"{run_dir}|{record['id']}|{index}", run=run_dir.name if run_dir.name not in
                         ("mapcoder", "mapcoder-lite") else run_dir.parent.name, problem=record["id"],
                         messages=call["messages"], language=language, k=settings.get("k"),
                         max_tokens=int(settings.get("max_tokens") or 1536), label=label)


def judge(role: str, prompt: Prompt, response: str) -> dict[str, Any]:
    verdict: dict[str, Any] = {
        "strict": is_strict(role, response, language=prompt.language, k=prompt.k),
        "readable": is_readable(role, response, language=prompt.language),
    }
    if role == "confidence":
        scored = confidence_prompt.parse(response)
        verdict["score"] = None if scored is None else scored.confidence
        if scored is not None and prompt.label in ("passed", "failed"):
            verdict["agrees"] = (scored.confidence >= CONFIDENCE_PASS_MIN if prompt.label == "passed"
                                 else scored.confidence <= CONFIDENCE_FAIL_MAX)
    return verdict


async def replay(prompts: list[Prompt], role: str, models: list[str], base_url: str, out: Path,
                 concurrency: int) -> None:
    from rich.progress import Progress

    path = out / "responses.jsonl"
    done = {(r["id"], r["model"]) for _, r in read_jsonl(path)}
    cut_partial_line(path)  # a kill's half answer is asked again
    todo = [(p, m) for m in models for p in prompts if (p.key, m) not in done]
    role_models = RoleModels()
    limiter = asyncio.Semaphore(concurrency)

    async def one(prompt: Prompt, model: str) -> dict[str, Any]:
        context = Context(base_url=base_url, model=model, temperature=0.0, max_tokens=prompt.max_tokens)
        async with limiter:
            # RoleModels is the graph's own client (sync): one thread per request in flight.
            text, call = await asyncio.to_thread(role_models.call, role, prompt.messages, context)
        return {"id": prompt.key, "run": prompt.run, "problem": prompt.problem, "model": model,
                "label": prompt.label, "response": text, "completion_tokens": call.completion_tokens,
                "seconds": call.seconds} | judge(role, prompt, text)

    with Progress() as progress, path.open("a", encoding="utf-8") as sink:
        task = progress.add_task(f"{role} replay", total=len(todo))
        for finished in asyncio.as_completed([one(p, m) for p, m in todo]):
            row = await finished
            sink.write(json.dumps(row, ensure_ascii=False) + "\n")
            sink.flush()  # each answer on disk as it comes: a killed replay resumes
            progress.advance(task)


def summarize(rows: list[dict[str, Any]], role: str) -> list[dict[str, Any]]:
    table = []
    for (run, model) in sorted({(r["run"], r["model"]) for r in rows}, key=lambda rm: (rm[0], rm[1])):
        mine = [r for r in rows if (r["run"], r["model"]) == (run, model)]
        n = len(mine)
        line: dict[str, Any] = {"run": run, "model": model, "answers": n,
                                "strict": sum(r["strict"] for r in mine), "readable": sum(r["readable"] for r in mine),
                                "tokens": round(statistics.mean(r["completion_tokens"] for r in mine), 1)}
        if role == "confidence":
            judged = [r for r in mine if "agrees" in r]
            line["agrees"] = f"{sum(r['agrees'] for r in judged)}/{len(judged)}"
            for label in ("passed", "failed"):
                scores = [r["score"] for r in mine if r["label"] == label and r.get("score") is not None]
                line[f"score_{label}"] = round(statistics.mean(scores), 1) if scores else None
        table.append(line)
    return table


def markdown(table: list[dict[str, Any]], role: str) -> str:
    head = ["run", "model", "answers", "strict format", "readable", "completion tokens"]
    if role == "confidence":
        head += ["score agrees with outcome", "mean score: plan passed", "mean score: plan failed"]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for t in table:
        cells = [t["run"], t["model"], str(t["answers"]), f"{t['strict']} ({t['strict'] / t['answers']:.0%})",
                 f"{t['readable']} ({t['readable'] / t['answers']:.0%})", str(t["tokens"])]
        if role == "confidence":
            cells += [t["agrees"], str(t["score_passed"] if t["score_passed"] is not None else "-"),
                      str(t["score_failed"] if t["score_failed"] is not None else "-")]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(table: list[dict[str, Any]], role: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    runs = sorted({t["run"] for t in table})
    models = sorted({t["model"] for t in table})
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(runs), 3.6))
    for i, model in enumerate(models):
        shares = [next((100 * t["strict"] / t["answers"] for t in table if (t["run"], t["model"]) == (run, model)), 0)
                  for run in runs]
        bars = ax.bar([x + i * width for x in range(len(runs))], shares, width, label=model)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    ax.set_xticks([x + width * (len(models) - 1) / 2 for x in range(len(runs))], runs)
    ax.set_ylabel("answers in the strict format (%)")
    ax.set_ylim(0, 110)
    ax.set_title(f"{role}: recorded prompts replayed")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="eval or collection run directories")
    parser.add_argument("--role", choices=ROLES, default="confidence")
    parser.add_argument("--model", action="append", required=True,
                        help="a served model name (base model or adapter); give it once per model")
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--limit", type=int, default=None,
                        help="the first N problems recorded in each run (results.jsonl order)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, default=Path("runs/bench/replay"))
    args = parser.parse_args()

    for run in args.runs:
        if not RunDir(run).is_run():
            parser.error(f"{run} has no {RUN_FILE}: give eval or collection run directories")
    prompts = [p for run in args.runs for p in recorded_prompts(run, args.role, args.limit)]
    if not prompts:
        parser.error(f"no recorded {args.role} calls in {', '.join(map(str, args.runs))}")
    args.out.mkdir(parents=True, exist_ok=True)
    try:
        asyncio.run(replay(prompts, args.role, args.model, args.base_url, args.out, args.concurrency))
    except RoleCallError as error:
        sys.exit(f"replay stopped: {error} (answers so far are in {args.out / 'responses.jsonl'})")
    wanted = {p.key for p in prompts}
    rows = [r for _, r in read_jsonl(args.out / "responses.jsonl") if r["id"] in wanted and r["model"] in args.model]
    table = summarize(rows, args.role)
    text = markdown(table, args.role)
    (args.out / "table.md").write_text(text, encoding="utf-8")
    chart(table, args.role, args.out / "chart.png")
    print(text)
    print(f"answers: {args.out / 'responses.jsonl'}; chart: {args.out / 'chart.png'}")


if __name__ == "__main__":
    main()
