"""Padding in training batches: examples drawn at random vs in groups of similar length.

    python benchmarks/train_batching.py DATA_DIR [--model qwen2.5-coder-0.5b-instruct]
    python benchmarks/train_batching.py DATA_DIR --time coder --examples 160   # and time both

DATA_DIR is what `extract` writes (DATA_DIR/<agent>/train.jsonl). A micro-batch is padded to its
longest example, so the tokens a training epoch computes are the sum over micro-batches of
micro-batch size x longest length. The table gives that sum over the real tokens for the Trainer's
random sampler and for its length-grouped one (`finetune --group-by-length`, the default), each
averaged over 10 seeds, with the default micro-batch 4 and batch 16. With --time AGENT, it also trains
that agent's adapter for one epoch each way on this machine (on the first --examples of its data, no
validation) and gives the seconds per optimizer step the manifests record: a whole epoch, because the
grouped sampler puts its longest step first.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.finetune.batching import length_grouped_sampler  # noqa: E402
from mapcoder_lite.finetune.train import AGENTS, TrainConfig, tokenize_example, train  # noqa: E402
from mapcoder_lite.serving.models import DEFAULT_MODEL, prepare_model  # noqa: E402

SEEDS = 10


def computed_tokens(lengths: list[int], order: list[int], micro: int) -> int:
    return sum(max(lengths[i] for i in order[j:j + micro]) * len(order[j:j + micro])
               for j in range(0, len(order), micro))  # fmt: skip


Row = tuple[str, int, int, float, float]  # agent, examples, real tokens, random and grouped ratios


def padding_rows(data: Path, model: Path, micro: int, batch: int, max_length: int) -> list[Row]:
    import torch
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(model))
    rows = []
    for agent in AGENTS:
        path = data / agent / "train.jsonl"
        if not path.is_file():
            continue
        examples = [json.loads(line) for line in path.open()]
        lengths = [len(row["input_ids"]) for e in examples if (row := tokenize_example(tokenizer, e, max_length))]
        drawn = sum(computed_tokens(lengths, torch.randperm(len(lengths), generator=torch.Generator().manual_seed(seed))
                                    .tolist(), micro) for seed in range(SEEDS)) / SEEDS  # fmt: skip
        # The order training uses: groups of whole optimizer steps (batch = micro x accumulation).
        grouped = sum(computed_tokens(lengths, list(length_grouped_sampler(lengths, batch, seed)), micro)
                      for seed in range(SEEDS)) / SEEDS  # fmt: skip
        real = sum(lengths)
        rows.append((agent, len(lengths), real, drawn / real, grouped / real))
    return rows


def seconds_per_step(data: Path, model: Path, agent: str, examples: int | None, grouped: bool) -> float:
    with tempfile.TemporaryDirectory() as folder:
        subset = Path(folder) / "train.jsonl"
        subset.write_text("".join((data / agent / "train.jsonl").open().readlines()[:examples]))
        result = train(TrainConfig(agent=agent, data=subset, base_model=model, out=Path(folder) / agent,
                                   epochs=1, group_by_length=grouped, progress=False))  # fmt: skip
    return result.manifest["seconds_per_step"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("data", type=Path, help="extract's output folder (one folder per agent)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--time", choices=AGENTS, help="also time one epoch of this agent's training each way")
    parser.add_argument("--examples", type=int, default=None, help="with --time: its first N examples only")
    args = parser.parse_args()
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such folder; give the folder `extract --out` wrote")
    model = prepare_model(args.model)
    defaults = TrainConfig(agent="coder", data="", base_model=model)
    rows = padding_rows(args.data, model, defaults.micro_batch, defaults.batch, defaults.max_length)
    print(f"tokens computed per epoch / real tokens (micro-batch {defaults.micro_batch}, batch {defaults.batch}, "
          f"{SEEDS} seeds)\n")
    print("| agent | examples | real tokens | random | grouped by length |\n| --- | ---: | ---: | ---: | ---: |")
    for agent, examples, real, drawn, grouped in rows:
        print(f"| {agent} | {examples} | {real:,} | {drawn:.2f} | {grouped:.2f} |")
    real = sum(row[2] for row in rows)
    print(f"| all | {sum(row[1] for row in rows)} | {real:,} | {sum(r[2] * r[3] for r in rows) / real:.2f} | "
          f"{sum(r[2] * r[4] for r in rows) / real:.2f} |")
    if args.time:
        timed = {name: seconds_per_step(args.data, model, args.time, args.examples, grouped)
                 for name, grouped in (("random", False), ("grouped by length", True))}  # fmt: skip
        print(f"\n{args.time}: one epoch on {args.examples or 'all'} examples each way, this machine\n")
        print("| sampler | seconds / step |\n| --- | ---: |")
        for name, seconds in timed.items():
            print(f"| {name} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
