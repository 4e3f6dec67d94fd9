"""What each of the graph's departures from the paper does to pass@1, calls, tokens and time.

    mapcoder-lite serve --model qwen2.5-coder-0.5b-instruct        # port 8000
    python benchmarks/levers.py --dataset mbpp --split validation --out runs/levers/mbpp-val
    python benchmarks/levers.py --dataset humaneval --plan added --out runs/levers/humaneval

Each variant is one `eval` run of the MapCoder strategy into OUT/<variant> (a rerun resumes each and
skips the finished ones), then `report`'s table goes to stdout and OUT/table.md, its chart to
OUT/chart.png. Two plans:

    left-out  every lever on (the defaults), then each one off in turn
    added     the paper's graph, then each lever added in turn, ending with every lever on

The levers: answer formats enforced at decoding (`structured_outputs`), a budget per role
(`<role>_max_tokens` and the debugging rounds `t`; off: every role gets `max_tokens`, and t is the
paper's), and the graph's `LEVERS` (a direct attempt
first, an end to repeated debugging, different plans). The prompts are not a lever here: they are code.
Choose defaults from a tuning split (MBPP's prompt and validation splits); a test split's rows
report, they do not choose.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.evals.report import load_run, publish  # noqa: E402
from mapcoder_lite.evals.runner import evaluate  # noqa: E402
from mapcoder_lite.graph.context import LEVERS, PAPER_T, ROLES, Context  # noqa: E402

# The levers in the order `added` turns them on: formats first (nothing else can be read without
# them), then what bounds the cost, then what changes the search. stop_repeats comes before the budgets
# because the budgets' t = 0 leaves no debugging round for it to end: after them its row would be a
# rerun of the one before.
ORDER = ("structured_outputs", "stop_repeats", "budgets", "direct_first", "plan_diversity")


def without(context: Context, lever: str) -> Context:
    """`context` with one lever off."""
    if lever == "structured_outputs":
        return replace(context, structured_outputs="off")
    if lever == "budgets":
        return replace(context, t=PAPER_T, **{f"{role}_max_tokens": context.max_tokens for role in ROLES})
    if lever in LEVERS:
        return replace(context, **{lever: False})
    raise ValueError(f"unknown lever {lever!r}; levers are {', '.join(ORDER)}")


def with_off(context: Context, levers: tuple[str, ...]) -> Context:
    for lever in levers:
        context = without(context, lever)
    return context


def variants(base: Context, plan: str) -> dict[str, Context]:
    """Each variant's name and context, in the order of the table."""
    if plan == "left-out":
        return {"all levers": base} | {f"without {lever}": without(base, lever) for lever in ORDER}
    if plan == "added":
        return {("paper's graph" if n == 0 else f"+ {ORDER[n - 1]}"): with_off(base, ORDER[n:])
                for n in range(len(ORDER) + 1)}
    raise ValueError(f"unknown plan {plan!r}; plans are left-out, added")


def folder_name(name: str) -> str:
    return name.replace("'", "").replace("+ ", "plus-").replace(" ", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mbpp")
    parser.add_argument("--split", default=None)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--plan", choices=("left-out", "added"), default="left-out")
    parser.add_argument("--only", nargs="*", default=None, help="run only these variants (names as in the table)")
    parser.add_argument("--base-url", default=Context.base_url)
    parser.add_argument("--model", default=Context.model)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--retry-errors", action="store_true",
                        help="run problems recorded with an error (a request timeout, a lost server) again")
    args = parser.parse_args()

    base = Context(base_url=args.base_url, model=args.model)
    chosen = variants(base, args.plan)
    if args.only:
        unknown = sorted(set(args.only) - set(chosen))
        if unknown:
            parser.error(f"--only: unknown variants {unknown}; this plan's are {list(chosen)}")
        chosen = {name: context for name, context in chosen.items() if name in args.only}
    args.out.mkdir(parents=True, exist_ok=True)
    for name, context in chosen.items():
        print(f"== {name}", flush=True)
        asyncio.run(evaluate(args.dataset, split=args.split, limit=args.limit, strategy="mapcoder",
                             context=context, out_dir=args.out / folder_name(name),
                             concurrency=args.concurrency, progress=sys.stderr.isatty(),
                             retry_errors=args.retry_errors))
    publish([load_run(args.out / folder_name(name), label=name) for name in chosen], args.out)


if __name__ == "__main__":
    main()
