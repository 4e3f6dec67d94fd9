"""Memory of agent-wise LoRA: one base model holding every role's adapter vs one model copy per role.

    python benchmarks/adapter_memory.py [--model qwen2.5-coder-0.5b-instruct] [--adapters DIR] [--json FILE]

Loads the model with transformers + PEFT in bf16 (the dtype vLLM serves), each layout in a fresh
process, and measures that process's proportional set size (PSS: resident memory with shared pages
split) after loading (every weight copied into the process's own memory, as a server or a device
holds it, not left mapped from the file) and one forward pass per role, minus the same process's PSS after importing
torch/transformers/peft. Layouts:
  * base: the base model alone (the reference);
  * shared: one base model with every role's adapter loaded (what MapCoder-Lite serves);
  * per-role: one full model per role, each with its adapter merged in (a fine-tuned model per agent).
Adapters: each role's from --adapters DIR (DIR/<role>, as `finetune` writes them) or, without it,
untrained rank-32 q/k/v/o adapters (the same size as trained ones). Prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mapcoder_lite.graph.context import ROLES  # noqa: E402
from mapcoder_lite.serving.models import DEFAULT_MODEL, prepare_model  # noqa: E402
from mapcoder_lite.serving.vllm import process_pss_bytes  # noqa: E402

LAYOUTS = ("base", "shared", "per-role")


def pss_mib() -> float:
    return process_pss_bytes(os.getpid()) / 2**20


def measure(layout: str, model_dir: str, adapters: dict[str, str]) -> dict[str, Any]:
    """Runs in a fresh process: load one layout, touch every role once, report memory and time."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    torch.set_num_threads(1)
    before = pss_mib()
    start = time.perf_counter()
    models: list[Any] = []
    if layout == "base":
        models.append((None, AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)))
    elif layout == "shared":
        base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
        items = list(adapters.items())
        model = PeftModel.from_pretrained(base, items[0][1], adapter_name=items[0][0], autocast_adapter_dtype=False)
        for role, path in items[1:]:
            model.load_adapter(path, adapter_name=role, autocast_adapter_dtype=False)
        models += [(role, model) for role in adapters]
    else:
        for role, path in adapters.items():
            base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.bfloat16)
            merged = PeftModel.from_pretrained(base, path, autocast_adapter_dtype=False).merge_and_unload()
            models.append((role, merged))
    # transformers maps bf16 safetensors zero-copy: copies of one file would share pages and look
    # free. Each copy holds its own weights, as it would in its own server or on its own device.
    with torch.no_grad():
        for param in {id(p): p for _, m in models for p in m.parameters()}.values():
            param.data = param.data.clone()
    load_s = time.perf_counter() - start
    tokens = torch.arange(100, 164).unsqueeze(0)  # 64 tokens: activations are small next to the weights
    with torch.no_grad():
        for role, model in models:
            if layout == "shared":
                model.set_adapter(role)
            model(tokens)
    unique = {id(m): m for _, m in models}.values()
    return {
        "layout": layout,
        "roles": len(adapters) if layout != "base" else 0,
        "parameters": sum(p.numel() for m in unique for p in m.parameters()),
        "load_s": round(load_s, 1),
        "pss_mib": round(pss_mib() - before),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL, help="Known name, GGUF file or checkpoint directory.")
    parser.add_argument("--adapters", type=Path, default=None, help="DIR/<role> adapters (default: untrained).")
    parser.add_argument("--roles", default=",".join(ROLES), help="Comma-separated roles, one adapter each.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument("--chart", type=Path, default=None, help="Also draw the memory bars here (PNG).")
    parser.add_argument("--measure", choices=LAYOUTS, help=argparse.SUPPRESS)  # the child process's job
    parser.add_argument("--adapter-map", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.measure:
        print(json.dumps(measure(args.measure, args.model, json.loads(args.adapter_map))))
        return

    roles = [r for r in args.roles.split(",") if r]
    model_dir = str(prepare_model(args.model))
    with tempfile.TemporaryDirectory(prefix="adapter-memory-") as scratch:
        if args.adapters is not None:
            adapters = {role: str(args.adapters / role) for role in roles}
            missing = [p for p in adapters.values() if not (Path(p) / "adapter_config.json").is_file()]
            if missing:
                sys.exit(f"--adapters {args.adapters}: no adapter_config.json in {', '.join(missing)}; "
                         "pass the directory `mapcoder-lite finetune` wrote one role's adapter into each of")
        else:
            from tests.adapters import make_random_adapters

            made = make_random_adapters(model_dir, scratch, {role: i for i, role in enumerate(roles)})
            adapters = {role: str(path) for role, path in made.items()}
        rows = []
        for layout in LAYOUTS:
            child = subprocess.run(
                [sys.executable, __file__, "--model", model_dir, "--measure", layout,
                 "--adapter-map", json.dumps(adapters)],
                capture_output=True, text=True,
            )
            if child.returncode != 0:
                sys.exit(f"measuring the {layout} layout failed:\n{child.stderr[-3000:]}")
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(f"[{time.strftime('%H:%M:%S')}] {rows[-1]}", file=sys.stderr, flush=True)

    base = next(r for r in rows if r["layout"] == "base")
    print(f"\n{args.model}, bf16, {len(roles)} roles ({', '.join(roles)}), "
          f"{'adapters from ' + str(args.adapters) if args.adapters else 'untrained rank-32 adapters'}\n")
    print("| layout | parameters | PSS after load and one pass per role (MiB) | vs base | load (s) |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for r in rows:
        print(f"| {r['layout']} | {r['parameters']:,} | {r['pss_mib']:,} | "
              f"{r['pss_mib'] / base['pss_mib']:.2f}x | {r['load_s']} |")
    if args.json:
        args.json.write_text(json.dumps({"model": args.model, "roles": roles, "rows": rows}, indent=2))
    if args.chart:
        chart(rows, args.chart, f"{Path(args.model).name}, {len(roles)} roles, bf16")


def chart(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    import matplotlib.pyplot as plt

    labels = {"base": "base model alone", "shared": "one base +\nan adapter per role",
              "per-role": "one model copy\nper role"}
    fig, ax = plt.subplots(figsize=(6, 3.5))
    bars = ax.bar([labels[r["layout"]] for r in rows], [r["pss_mib"] / 1024 for r in rows],
                  color=["#999999", "#2a7ab9", "#d9822b"])
    ax.bar_label(bars, labels=[f"{r['pss_mib'] / 1024:.2f} GiB" for r in rows])
    ax.set_ylabel("memory (PSS, GiB)")
    ax.set_title(title)
    ax.margins(y=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
