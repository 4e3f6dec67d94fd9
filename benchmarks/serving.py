"""Serving benchmark: model-prepare time, vLLM throughput (base model and a LoRA role), and memory.

    python benchmarks/serving.py [--model qwen2.5-coder-0.5b-instruct] [--concurrency 1,8,32]

Measures, on the machine it runs on:
  * prepare time: a cold conversion into a fresh directory (wheels already cached) and a cached call;
  * server start time and resident memory (RSS of the whole process tree) with 0 and with 4 adapters;
  * generation throughput (completion tokens per second over all requests in flight) at each
    concurrency, for the base model, for one role's LoRA adapter, and for requests spread over all four
    roles' adapters (as MapCoder-Lite sends them), every request producing exactly --max-tokens tokens
    (vLLM's ignore_eos) so the levels compare;
  * with --lora-ops grouped,vllm: the same with our CPU LoRA ops (serving/cpu_lora.py) and vLLM's own.
Prints a markdown table and optionally writes the numbers as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.serving.models import DEFAULT_MODEL, prepare_model  # noqa: E402
from mapcoder_lite.serving.vllm import CPU_LORA_ENV, DEFAULT_KV_CACHE_GIB, VLLMServer  # noqa: E402

ROLES = ("retriever", "planner", "coder", "debugger")
PROMPT = (
    "Write a Python function `longest_increasing_subsequence(nums: list[int]) -> int` that returns the "
    "length of the longest strictly increasing subsequence. Explain the algorithm first, then give the code."
)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


async def _one(client: httpx.AsyncClient, url: str, model: str, max_tokens: int) -> tuple[int, float]:
    start = time.perf_counter()
    response = await client.post(
        url,
        json={
            "model": model,
            "messages": [{"role": "user", "content": PROMPT}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "ignore_eos": True,  # every request generates exactly max_tokens
        },
    )
    response.raise_for_status()
    return int(response.json()["usage"]["completion_tokens"]), time.perf_counter() - start


async def _wave(base_url: str, models: list[str], concurrency: int, requests: int, max_tokens: int
                ) -> dict[str, float]:
    """`requests` requests, `concurrency` at a time, the i-th to models[i % len(models)]."""
    limit = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=3600) as client:

        async def bounded(model: str) -> tuple[int, float]:
            async with limit:
                return await _one(client, f"{base_url}/chat/completions", model, max_tokens)

        start = time.perf_counter()
        results = await asyncio.gather(*(bounded(models[i % len(models)]) for i in range(requests)))
        wall = time.perf_counter() - start
    tokens = sum(t for t, _ in results)
    return {
        "tokens": tokens,
        "seconds": round(wall, 2),
        "tok_per_s": round(tokens / wall, 1),
        "mean_latency_s": round(statistics.mean(s for _, s in results), 2),
    }


def throughput(server: VLLMServer, models: str | list[str], levels: list[int], waves: int, max_tokens: int
               ) -> dict[int, Any]:
    models = [models] if isinstance(models, str) else models
    for model in models:  # warm-up: each adapter's first request pays one-off costs
        asyncio.run(_wave(server.base_url, [model], 1, 1, 8))
    out = {}
    for concurrency in levels:
        out[concurrency] = asyncio.run(_wave(server.base_url, models, concurrency, concurrency * waves, max_tokens))
        log(f"{','.join(models)} @ {concurrency}: {out[concurrency]}")
    return out


def memory(server: VLLMServer, when: str = "idle") -> dict[str, int]:
    """RSS (shared pages counted in every process) and PSS (counted once) of the server's tree, MiB."""
    return {f"rss_{when}_mib": server.rss_bytes() // 2**20, f"pss_{when}_mib": server.pss_bytes() // 2**20}


def measure_prepare(model: str) -> dict[str, float]:
    """Cold conversion into a fresh directory (wheels cached), then a cached call to the cache dir."""
    scratch = Path(tempfile.mkdtemp(prefix="prepare-bench-"))
    try:
        start = time.perf_counter()
        prepare_model(model, scratch / "model", progress=log)
        cold = time.perf_counter() - start
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    prepare_model(model, progress=log)  # make sure the cache holds it
    start = time.perf_counter()
    prepare_model(model)
    return {"cold_s": round(cold, 1), "cached_s": round(time.perf_counter() - start, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Known name, GGUF file or checkpoint directory.")
    parser.add_argument("--concurrency", default="1,8,32", help="Comma-separated concurrency levels.")
    parser.add_argument("--waves", type=int, default=1, help="Requests per level = concurrency x waves.")
    parser.add_argument("--max-tokens", type=int, default=64, help="Tokens generated per request.")
    parser.add_argument("--kv-cache-gib", type=int, default=DEFAULT_KV_CACHE_GIB)
    parser.add_argument("--threads", type=int, default=None, help="OpenMP threads (default: vLLM's binding).")
    parser.add_argument("--python", default=None, help="Python with vLLM (default: $MAPCODER_LITE_VLLM_PYTHON).")
    parser.add_argument("--skip-prepare", action="store_true", help="Do not time a cold model conversion.")
    parser.add_argument("--skip-base-server", action="store_true", help="Only start the server with adapters.")
    parser.add_argument("--lora-ops", default="grouped",
                        help="Comma-separated LoRA op implementations to compare: grouped (ours), vllm.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    results: dict[str, Any] = {"model": args.model, "levels": levels, "max_tokens": args.max_tokens}

    if not args.skip_prepare:
        results["prepare"] = measure_prepare(args.model)
        log(f"prepare: {results['prepare']}")
    model_dir = prepare_model(args.model, progress=log)
    common = {"kv_cache_gib": args.kv_cache_gib, "threads": args.threads, "python": args.python}

    work = Path(tempfile.mkdtemp(prefix="serving-bench-"))
    try:
        if not args.skip_base_server:
            log("server without adapters")
            with VLLMServer(model_dir, log_path=work / "vllm-base.log", **common) as server:
                results["no_adapters"] = memory(server) | {"start_s": round(server.started_in_s or 0, 1)}
                results["no_adapters"]["base"] = throughput(server, server.served_model_name, levels, args.waves,
                                                            args.max_tokens)  # fmt: skip
                results["no_adapters"] |= memory(server, "after")

        from tests.adapters import make_random_adapters

        log("making 4 rank-32 adapters")
        adapters = make_random_adapters(model_dir, work / "adapters", {r: i for i, r in enumerate(ROLES, 1)})
        for ops in args.lora_ops.split(","):
            log(f"server with 4 adapters, {ops} LoRA ops")
            with VLLMServer(model_dir, adapters, log_path=work / f"vllm-lora-{ops}.log",
                            env={CPU_LORA_ENV: ops}, **common) as server:
                entry: dict[str, Any] = memory(server) | {"start_s": round(server.started_in_s or 0, 1)}
                entry["base"] = throughput(server, server.served_model_name, levels, args.waves, args.max_tokens)
                entry["lora"] = throughput(server, "coder", levels, args.waves, args.max_tokens)
                entry["mixed"] = throughput(server, list(ROLES), levels, args.waves, args.max_tokens)
                entry |= memory(server, "after")
                results["four_adapters" if ops == "grouped" else f"four_adapters_{ops}"] = entry
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(render(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


def render(results: dict[str, Any]) -> str:
    levels = results["levels"]
    lines = [f"### Serving `{results['model']}` ({results['max_tokens']} tokens per request)", ""]
    lines += ["| server | requests to | " + " | ".join(f"tok/s @ {c}" for c in levels) + " |"]
    lines += ["|---|---|" + "---|" * len(levels)]
    rows = []
    if "no_adapters" in results:
        rows.append(("no adapters", "base model", results["no_adapters"]["base"]))
    for key, ops in (("four_adapters", "grouped"), ("four_adapters_vllm", "vllm")):
        if key in results:
            rows.append((f"4 adapters, {ops} ops", "base model", results[key]["base"]))
            rows.append((f"4 adapters, {ops} ops", "LoRA role (coder)", results[key]["lora"]))
            if "mixed" in results[key]:
                rows.append((f"4 adapters, {ops} ops", "all 4 roles, in turn", results[key]["mixed"]))
    for server, target, data in rows:
        cells = " | ".join(str(data[c]["tok_per_s"]) for c in levels)
        lines.append(f"| {server} | {target} | {cells} |")
    lines += [
        "",
        "| server | start (s) | RSS idle (MiB) | PSS idle (MiB) | RSS after load (MiB) | PSS after load (MiB) |",
        "|---|---|---|---|---|---|",
    ]
    for key, label in (("no_adapters", "no adapters"), ("four_adapters", "4 adapters (rank 32)"),
                       ("four_adapters_vllm", "4 adapters, vllm ops")):
        if key in results:
            r = results[key]
            cells = " | ".join(str(r[k]) for k in ("rss_idle_mib", "pss_idle_mib", "rss_after_mib", "pss_after_mib"))
            lines.append(f"| {label} | {r['start_s']} | {cells} |")
    if "prepare" in results:
        p = results["prepare"]
        lines += ["", f"Model prepare: {p['cold_s']} s cold (GGUF assembled, verified, converted), "
                      f"{p['cached_s']} s cached."]  # fmt: skip
    return "\n".join(lines)


if __name__ == "__main__":
    main()
