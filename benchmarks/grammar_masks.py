"""What each role's answer grammar costs the server per generated token: xgrammar's token-mask time.

    python benchmarks/grammar_masks.py runs/mbpp-validation-mapcoder       # answers of a finished run
    python benchmarks/grammar_masks.py RUN --answers 5 --model qwen2.5-coder-0.5b-instruct
    python benchmarks/grammar_masks.py RUN --roles retriever                # one role's grammar

vLLM computes the mask of every structured-output request in a batch before it samples that step's
tokens, one request after another, so a grammar that costs tens of milliseconds per token slows the
whole batch: with 16 problems planning at once (48 plans) a 60 ms mask is seconds per step, against a
model step of tens of milliseconds for the 0.5B on two cores. This replays recorded answers (the
first `--answers` of each role in the run's trajectories) through each role's grammar, token by token
with the model's tokenizer, and prints the mask time per token (median, 90th percentile, mean) and
whether the grammar takes every token of the answer. An answer decoded under an older grammar may be
refused by the current one (the table says so; its times stop at the refused token).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.graph.context import DEFAULT_MODEL  # noqa: E402
from mapcoder_lite.roles import REGISTRY  # noqa: E402
from mapcoder_lite.serving.models import models_dir  # noqa: E402


def recorded_answers(run: Path, per_role: int) -> dict[str, list[str]]:
    """The first `per_role` answers of each role with a grammar, from the run's trajectories."""
    answers: dict[str, list[str]] = {role: [] for role, spec in REGISTRY.items() if spec.grammar}
    for path in sorted((run / "trajectories").glob("*.json")):
        for call in json.loads(path.read_text()).get("trajectory", []):
            kept = answers.get(call.get("role"))
            if kept is not None and call.get("response") and len(kept) < per_role:
                kept.append(call["response"])
    return {role: texts for role, texts in answers.items() if texts}


def replay(compiled: Any, bitmask: Any, token_ids: list[int]) -> tuple[list[float], bool]:
    """Mask milliseconds for each token of one answer, and whether the grammar took every token."""
    import xgrammar

    matcher = xgrammar.GrammarMatcher(compiled)
    times = []
    for token in token_ids:
        start = time.perf_counter()
        matcher.fill_next_token_bitmask(bitmask)
        times.append((time.perf_counter() - start) * 1000)
        if not matcher.accept_token(token):
            return times, False
    return times, True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path, help="a finished eval run directory (its trajectories hold the answers)")
    parser.add_argument("--answers", type=int, default=3, help="answers per role")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a prepared model (its tokenizer)")
    parser.add_argument("--k", type=int, default=3, help="the retriever's k in that run")
    parser.add_argument("--roles", nargs="+", choices=[role for role, spec in REGISTRY.items() if spec.grammar],
                        help="only these roles (default: every role with answers in the run)")
    args = parser.parse_args()

    import xgrammar
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(models_dir() / args.model)
    info = xgrammar.TokenizerInfo.from_huggingface(tokenizer)
    compiler = xgrammar.GrammarCompiler(info)
    answers = {role: texts for role, texts in recorded_answers(args.run, args.answers).items()
               if not args.roles or role in args.roles}
    if not answers:
        parser.error(f"{args.run}: no recorded answers of a role with a grammar (is it a graph run?)")
    print("| role | answers taken to the end | tokens | mask ms median | p90 | mean |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for role, texts in answers.items():
        grammar = REGISTRY[role].grammar("python", args.k)
        compiled = compiler.compile_grammar(grammar)
        bitmask = xgrammar.allocate_token_bitmask(1, info.vocab_size)
        times: list[float] = []
        accepted = 0
        for text in texts:
            spent, whole = replay(compiled, bitmask, tokenizer.encode(text))
            times += spent
            accepted += whole
        times.sort()
        print(f"| {role} | {accepted}/{len(texts)} | {len(times)} | {statistics.median(times):.2f} | "
              f"{times[int(0.9 * (len(times) - 1))]:.2f} | {sum(times) / len(times):.2f} |")


if __name__ == "__main__":
    main()
