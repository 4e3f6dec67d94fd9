"""benchmarks/prefix_cache.py: what it reads from vLLM's metrics and how it adds up a resumed run."""

from __future__ import annotations

import json
from pathlib import Path

from tests.modules import load_benchmark

# Lines of vLLM 0.32's /metrics page (CPU server, one model), as served: counters, their `_created`
# gauges, and look-alike names that must not be counted.
METRICS = """\
# HELP vllm:prefix_cache_queries_total Prefix cache queries, in terms of number of queried tokens.
# TYPE vllm:prefix_cache_queries_total counter
vllm:prefix_cache_queries_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 155346.0
vllm:prefix_cache_queries_created{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 1.7961926289719975e+09
vllm:prefix_cache_hits_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 10112.0
vllm:prompt_tokens_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 155346.0
vllm:prompt_tokens_created{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 1.7961926289720914e+09
vllm:prompt_tokens_by_source_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct",source="local_compute"} 145234.0
vllm:prompt_tokens_cached_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 10112.0
vllm:generation_tokens_total{engine="0",model_name="qwen2.5-coder-0.5b-instruct"} 2.5e+04
vllm:generation_tokens_total{engine="0",model_name="coder"} 1000.0
"""


def test_counters_are_read_by_exact_name_and_summed_over_labels() -> None:
    bench = load_benchmark("prefix_cache")
    assert bench.parse_counters(METRICS) == {
        "prefix_cache_queries_total": 155346.0, "prefix_cache_hits_total": 10112.0,
        "prompt_tokens_total": 155346.0, "generation_tokens_total": 26000.0,
    }
    assert bench.parse_counters("") == dict.fromkeys(bench.COUNTERS, 0.0)


def test_a_resumed_run_adds_up_its_sittings(tmp_path: Path) -> None:
    bench = load_benchmark("prefix_cache")
    assert bench.spent(tmp_path) == dict.fromkeys(bench.COUNTERS, 0.0)
    sittings = [dict.fromkeys(bench.COUNTERS, 10.0), dict.fromkeys(bench.COUNTERS, 5.0)]
    (tmp_path / bench.METRICS_FILE).write_text(json.dumps({"sittings": sittings}))
    assert bench.spent(tmp_path) == dict.fromkeys(bench.COUNTERS, 15.0)
    assert not bench.finished(tmp_path)  # counters without a finished run
