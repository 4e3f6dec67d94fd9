"""Which wording of the one-call `direct` prompt a small model follows best, on tuning splits only.

    mapcoder-lite serve --model qwen2.5-coder-0.5b-instruct --threads 2       # port 8000
    python benchmarks/direct_prompts.py --model qwen2.5-coder-0.5b-instruct --out runs/bench/direct-prompts

The project's `direct` prompt scored 48.2% on HumanEval where a plain "complete this function" prompt
scored 56.1% on the same model and server; the differences are the system line, the samples section
and the sentence on how the program is run.
Each variant here changes one of them. Choices are made on MBPP's prompt (1-10) and validation
(511-600) splits only, never on a test split: each variant answers the same problems at temperature
0 (MBPP: 100 statements with asserts; --dataset mbpp-py: the 45 problems of MultiPL-E's typed MBPP
in those splits, given as function stubs as HumanEval is) and is scored on their hidden tests in the
sandbox, as `eval` scores. Answers stream to OUT/<variant>.jsonl (a rerun skips what is there); the
table goes to stdout and OUT/table.md, the chart to OUT/chart.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.evals import Problem, load_problems  # noqa: E402
from mapcoder_lite.evals.scoring import score  # noqa: E402
from mapcoder_lite.prompts import coder  # noqa: E402
from mapcoder_lite.prompts import direct as project  # noqa: E402
from mapcoder_lite.prompts.common import chat, format_samples, io_contract, problem_section  # noqa: E402

Messages = list[dict[str, str]]


def _plain(problem: Problem) -> str:
    """The benchmark's own wording: MBPP's "Your code should pass these tests:" form."""
    return f"{problem.problem.strip()}\nYour code should pass these tests:\n\n{format_samples(problem.sample_tests)}"


def _user_only(user: str) -> Messages:
    return [{"role": "user", "content": user.strip()}]


FENCE = "Answer with the complete code in a single ```python code block and no other text."

VARIANTS: dict[str, Callable[[Problem], Messages]] = {
    # What `direct` sends today.
    "project": lambda p: project.build_messages(p.problem, p.sample_tests, p.language, p.entry_point),
    # Without our system line: the chat template's own default system prompt.
    "no-system": lambda p: _user_only(project.build_messages(p.problem, p.sample_tests, p.language,
                                                             p.entry_point)[1]["content"]),
    # Without the "## Problem / ## Sample tests" sections: the benchmark's wording.
    "plain-sections": lambda p: chat(project.SYSTEM, f"{_plain(p)}\n\n"
                                     f"{io_contract(p.sample_tests, p.entry_point, p.language)}\n{FENCE}"),
    # Without the sentence on how the program is run.
    "no-contract": lambda p: chat(project.SYSTEM, f"{problem_section(p.problem, p.sample_tests)}\n\n{FENCE}"),
    # All three removed: the plainest prompt.
    "plain": lambda p: _user_only(f"{_plain(p)}\n\n{FENCE}"),
    # For a problem given as a function stub (HumanEval's form, MultiPL-E's MBPP): complete it.
    "complete": lambda p: _user_only(f"Complete the following Python function:\n```python\n{p.problem.strip()}\n```\n"
                                     f"{FENCE}"),
    "complete-samples": lambda p: _user_only(
        f"Complete the following Python function:\n```python\n{p.problem.strip()}\n```\n"
        f"Your code should pass these tests:\n\n{format_samples(p.sample_tests)}\n\n{FENCE}"),
}
# Tuning splits only: MBPP's prompt (1-10) and validation (511-600) task ids, in either file.
TUNING_IDS = set(range(1, 11)) | set(range(511, 601))


async def answer(client: Any, model: str, messages: Messages, max_tokens: int) -> tuple[str, int]:
    reply = await client.chat.completions.create(model=model, messages=messages, temperature=0.0,
                                                 max_tokens=max_tokens)
    return reply.choices[0].message.content or "", reply.usage.completion_tokens if reply.usage else 0


async def run_variant(name: str, problems: list[Problem], args: argparse.Namespace, out: Path) -> list[dict]:
    from openai import AsyncOpenAI

    path = out / f"{name}.jsonl"
    done = {json.loads(line)["id"]: json.loads(line) for line in path.read_text().splitlines()} \
        if path.is_file() else {}
    client = AsyncOpenAI(base_url=args.base_url, api_key="EMPTY", timeout=600)
    gate = asyncio.Semaphore(args.concurrency)

    async def one(problem: Problem) -> dict:
        if problem.id in done:
            return done[problem.id]
        async with gate:
            text, tokens = await answer(client, args.model, VARIANTS[name](problem), args.max_tokens)
        code = coder.parse(text, problem.language) or ""
        verdict = await asyncio.to_thread(score, problem, code)
        record = {"id": problem.id, "passed": verdict.passed, "completion_tokens": tokens,
                  "format_failure": not code}
        with path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        print(f"{name:15} {problem.id:10} {'pass' if verdict.passed else 'fail'}", file=sys.stderr)
        return record

    return list(await asyncio.gather(*(one(p) for p in problems)))


def table(results: dict[str, list[dict]]) -> str:
    lines = ["| variant | pass@1 | format failures | completion tokens / problem |", "| --- | ---: | ---: | ---: |"]
    for name, records in results.items():
        passed = sum(r["passed"] for r in records)
        lines.append(f"| {name} | {passed}/{len(records)} ({passed / len(records):.1%}) | "
                     f"{sum(r['format_failure'] for r in records)} | "
                     f"{statistics.mean(r['completion_tokens'] for r in records):.0f} |")
    return "\n".join(lines) + "\n"


def chart(results: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    rates = [100 * sum(r["passed"] for r in results[n]) / len(results[n]) for n in names]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    ax.barh(names, rates, color="#6b5bd2")
    for y, rate in enumerate(rates):
        ax.text(rate + 0.5, y, f"{rate:.0f}%", va="center")
    ax.set_xlabel(f"pass@1 on MBPP prompt + validation ({len(next(iter(results.values())))} problems)")
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base-url", default="http://127.0.0.1:8000/v1")
    parser.add_argument("--model", default="qwen2.5-coder-0.5b-instruct")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; default: all")
    parser.add_argument("--max-tokens", type=int, default=1536)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--dataset", choices=("mbpp", "mbpp-py"), default="mbpp",
                        help="mbpp: the statement and asserts; mbpp-py: MultiPL-E's function stubs (HumanEval's form)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench/direct-prompts"))
    args = parser.parse_args()
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; known: {', '.join(VARIANTS)}")
    if args.dataset == "mbpp":
        problems = load_problems("mbpp", "prompt") + load_problems("mbpp", "validation")
    else:
        problems = [p for p in load_problems("mbpp-py") if p.meta["task_id"] in TUNING_IDS]
    args.out.mkdir(parents=True, exist_ok=True)
    results = {name: asyncio.run(run_variant(name, problems, args, args.out)) for name in args.variants.split(",")}
    text = table(results)
    (args.out / "table.md").write_text(text)
    chart(results, args.out / "chart.png")
    print(text, end="")


if __name__ == "__main__":
    main()
