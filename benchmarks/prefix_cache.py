"""Automatic prefix caching on the CPU: what the graph's shared prompt prefixes save.

    python benchmarks/prefix_cache.py --dataset mbpp --split validation --out runs/prefix-cache

vLLM 0.32 caches prompt prefixes by default, also on the CPU. The graph's prompts share long prefixes
(every planner and confidence prompt of a problem starts with the same system text, problem and
examples), so the cache can skip part of each prefill. This runs the default MapCoder eval twice, each
time on a server of its own started as `mapcoder-lite serve` starts it (every core, idle waits): once
as served (`on`), once with vLLM's `--no-enable-prefix-caching` (`off`). Each run goes into
OUT/<setting>; the server's prefix-cache counters over the run go beside it (prefix_cache.json), so a
rerun skips a finished setting and starts no server for it. Prints a table (and writes OUT/table.md,
the report's chart OUT/chart.png).

Choose a tuning split (MBPP's prompt or validation); greedy decoding on a CPU is not bit-stable across
batch shapes, so the two runs' answers, and with them pass@1 and the tokens, may differ a little: the
cache's saving is read in the prompt tokens it served and in the wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.evals.report import load_run, publish  # noqa: E402
from mapcoder_lite.evals.rundir import RunDir  # noqa: E402
from mapcoder_lite.evals.runner import evaluate  # noqa: E402
from mapcoder_lite.graph.context import Context  # noqa: E402
from mapcoder_lite.serving.models import DEFAULT_MODEL, prepare_model  # noqa: E402
from mapcoder_lite.serving.vllm import VLLMServer  # noqa: E402

SETTINGS = {"on": [], "off": ["--no-enable-prefix-caching"]}
COUNTERS = ("prefix_cache_queries_total", "prefix_cache_hits_total", "prompt_tokens_total",
            "generation_tokens_total")
METRICS_FILE = "prefix_cache.json"


def counters(root_url: str) -> dict[str, float]:
    return parse_counters(httpx.get(f"{root_url}/metrics", timeout=30).text)


def parse_counters(metrics: str) -> dict[str, float]:
    """The totals of COUNTERS in a Prometheus text page, summed over their label sets."""
    totals = dict.fromkeys(COUNTERS, 0.0)
    for name in COUNTERS:
        for value in re.findall(rf"^vllm:{name}{{[^}}]*}} ([0-9.e+]+)$", metrics, re.MULTILINE):
            totals[name] += float(value)
    return totals


def _sittings(out: Path) -> list[dict[str, float]]:
    return json.loads((out / METRICS_FILE).read_text())["sittings"] if (out / METRICS_FILE).exists() else []


def finished(out: Path) -> bool:
    return (out / METRICS_FILE).exists() and RunDir(out).is_run() and not load_run(out).partial


def spent(out: Path) -> dict[str, float]:
    """The server's counters over every sitting of a run (a resumed run adds its own)."""
    return {name: sum(s[name] for s in _sittings(out)) for name in COUNTERS}


def run_setting(setting: str, args: argparse.Namespace, model_dir: Path) -> None:
    out = args.out / setting
    # As `mapcoder-lite serve` starts it: every core, idle waits.
    server = VLLMServer(model_dir, served_model_name=args.model, log_path=args.out / f"server-{setting}.log",
                        extra_args=SETTINGS[setting])
    with server:
        before = counters(server.root_url)
        try:
            asyncio.run(evaluate(args.dataset, split=args.split, limit=args.limit, strategy="mapcoder",
                                 context=Context(base_url=server.base_url, model=args.model), out_dir=out,
                                 concurrency=args.concurrency, progress=sys.stderr.isatty(), retry_errors=True))
        finally:  # an interrupted sitting's counters count too: its finished problems are kept
            after = counters(server.root_url)
            sittings = _sittings(out)
            sittings.append({name: after[name] - before[name] for name in COUNTERS})
            (out / METRICS_FILE).write_text(json.dumps({"sittings": sittings}, indent=2) + "\n")


def table(args: argparse.Namespace) -> str:
    lines = ["| prefix caching | pass@1 | wall time | prompt tokens served from the cache | completion tokens / s |",
             "| --- | ---: | ---: | ---: | ---: |"]
    for setting in SETTINGS:
        stats = load_run(args.out / setting, label=setting)
        served = spent(args.out / setting)
        prompt = served["prompt_tokens_total"]
        share = served["prefix_cache_hits_total"] / prompt if prompt else 0.0
        lines.append(f"| {setting} | {stats.pass_at_1:.1%} ({stats.passed}/{stats.problems}) | "
                     f"{stats.wall_seconds / 60:.1f} min | {share:.1%} of {prompt:,.0f} | "
                     f"{stats.completion_tokens / stats.wall_seconds:.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dataset", default="mbpp")
    parser.add_argument("--split", default="validation")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    model_dir = prepare_model(args.model)
    for setting in SETTINGS:
        if finished(args.out / setting):
            print(f"== {setting}: finished before", flush=True)
            continue
        print(f"== prefix caching {setting}", flush=True)
        run_setting(setting, args, model_dir)
    publish([load_run(args.out / setting, label=f"prefix caching {setting}") for setting in SETTINGS], args.out,
            preface=table(args))


if __name__ == "__main__":
    main()
