"""Fine-tuning input checks (no model loads): bad data files, backends, manifests, `serve --adapters`."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from mapcoder_lite.finetune import train as train_module
from mapcoder_lite.finetune.batching import length_grouped_sampler
from mapcoder_lite.finetune.cli import _modules, finetune_command
from mapcoder_lite.finetune.manifest import base_model_hash, read_manifest, sha256_file, write_manifest
from mapcoder_lite.finetune.train import (
    UNSLOTH_INSTALL,
    BackendError,
    DataError,
    TrainConfig,
    load_examples,
    resolve_backend,
    train,
)
from mapcoder_lite.serving.vllm import discover_adapters

GOOD_ANSWERS = {
    "retriever": "<root>\n<problem>\n<description>Sum a list.</description>\n<code>print(sum(xs))</code>\n"
    "<planning>1. add them</planning>\n</problem>\n<algorithm>Simple iteration.</algorithm>\n</root>",
    "planner": "1. Read the input.\n2. Print the sum.",
    "confidence": "<root><explanation>The plan is direct.</explanation><confidence>90</confidence></root>",
    "coder": "```python\nprint(sum(map(int, input().split())))\n```",
    "debugger": "1. Convert the input to int first.\n```python\nprint(sum(map(int, input().split())))\n```",
}
BAD_ANSWERS = {
    "retriever": "Here are some similar problems: two sum, three sum.",
    "planner": "1. Read.\n```python\nprint(1)\n```",
    "confidence": "<root><explanation>ok</explanation><confidence>90%</confidence></root>",
    "coder": "Here is the code:\n```python\nprint(1)\n```\nand a test:\n```python\nprint(2)\n```",
    "debugger": "```python\nprint(1)\n```",
}
PROMPT = [{"role": "system", "content": "You are an agent."}, {"role": "user", "content": "Sum the numbers."}]


def row(answer: str, prompt: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {"prompt": prompt or PROMPT, "completion": [{"role": "assistant", "content": answer}]}


def write(path: Path, lines: list[Any]) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


@pytest.mark.parametrize("agent", list(GOOD_ANSWERS))
def test_each_agents_strict_answers_load(tmp_path: Path, agent: str) -> None:
    data = write(tmp_path / "train.jsonl", [row(GOOD_ANSWERS[agent]), "", row(GOOD_ANSWERS[agent])])
    examples = load_examples(data, agent)
    assert len(examples) == 2  # blank lines are skipped
    assert examples[0]["completion"][0]["content"] == GOOD_ANSWERS[agent]


@pytest.mark.parametrize("agent", list(BAD_ANSWERS))
def test_an_answer_outside_the_agents_format_names_file_and_line(tmp_path: Path, agent: str) -> None:
    data = write(tmp_path / "train.jsonl", [row(GOOD_ANSWERS[agent]), row(BAD_ANSWERS[agent])])
    with pytest.raises(DataError, match=rf"train\.jsonl:2: the answer is not in the {agent}'s strict format"):
        load_examples(data, agent)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (["not json at all"], r":1: not JSON .*expected JSONL"),
        ([[1, 2]], r":1: a JSON list, expected an object"),
        ([{"prompt": PROMPT}], r":1: no completion"),
        ([{"completion": [{"role": "assistant", "content": "x"}]}], r":1: no prompt"),
        ([{"messages": PROMPT}], r":1: no prompt and no completion"),
        ([{"prompt": "Sum the numbers.", "completion": []}], r":1: prompt is not a non-empty list"),
        ([{"prompt": [{"role": "user"}], "completion": []}], r":1: prompt: a user message has no text"),
        ([{"prompt": [{"role": "robot", "content": "hi"}], "completion": []}], r":1: prompt: message role 'robot'"),
        ([{"prompt": PROMPT[:1], "completion": []}], r":1: prompt ends with a system message"),
        ([{"prompt": PROMPT, "completion": "```python\nx\n```"}], r":1: completion is not a list of exactly one"),
        ([{"prompt": PROMPT, "completion": [{"role": "user", "content": "x"}]}], r":1: completion: message role"),
        ([row(GOOD_ANSWERS["coder"]), row(GOOD_ANSWERS["coder"]) | {"completion": None}], r":2: completion is not"),
    ],
)
def test_malformed_lines_are_named(tmp_path: Path, lines: list[Any], message: str) -> None:
    data = write(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError, match=message) as caught:
        load_examples(data, "coder")
    assert str(data) in str(caught.value)


def test_empty_unreadable_and_binary_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match=r"empty\.jsonl: empty; no examples"):
        load_examples(empty, "coder")
    with pytest.raises(DataError, match=r"missing\.jsonl: cannot read"):
        load_examples(tmp_path / "missing.jsonl", "coder")
    binary = tmp_path / "data.parquet"
    binary.write_bytes(b"PAR1\xff\xfe\x00")
    with pytest.raises(DataError, match=r"data\.parquet: not UTF-8 text"):
        load_examples(binary, "coder")
    with pytest.raises(ValueError, match="unknown agent 'tester'"):
        load_examples(empty, "tester")


@pytest.fixture
def fake_base(tmp_path: Path) -> Path:
    """A directory that passes the checkpoint check but holds no model: nothing may try to load it."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text('{"model_type": "llama"}')
    (base / "model.safetensors").write_bytes(b"weights")
    return base


def test_bad_data_fails_before_any_model_loads(tmp_path: Path, fake_base: Path, monkeypatch: Any) -> None:
    def no_loading(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the data was checked")

    monkeypatch.setattr(train_module, "_load_peft", no_loading)
    monkeypatch.setattr(train_module, "_load_unsloth", no_loading)
    good = write(tmp_path / "train.jsonl", [row(GOOD_ANSWERS["coder"])])
    bad = write(tmp_path / "validation.jsonl", [row(GOOD_ANSWERS["coder"]), row(BAD_ANSWERS["coder"])])
    with pytest.raises(DataError, match=r"train\.jsonl:1: the answer is not in the planner's strict format"):
        train(TrainConfig(agent="planner", data=good, base_model=fake_base, out=tmp_path / "out"))
    with pytest.raises(DataError, match=r"validation\.jsonl:2"):
        train(TrainConfig(agent="coder", data=good, validation=bad, base_model=fake_base, out=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rank": 64}, "vLLM serves ranks 1..32"),
        ({"agent": "tester"}, "unknown agent"),
        ({"backend": "deepspeed"}, "unknown backend"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"dtype": "int8"}, "dtype 'int8'"),
        ({"warmup_ratio": 1.5}, r"warmup_ratio must be in \[0, 1\)"),
        ({"base_model": "/nonexistent/model"}, "no config.json"),
    ],
)
def test_config_errors(tmp_path: Path, fake_base: Path, change: dict[str, Any], message: str) -> None:
    data = write(tmp_path / "train.jsonl", [row(GOOD_ANSWERS["coder"])])
    config = TrainConfig(**({"agent": "coder", "data": data, "base_model": fake_base} | change))
    with pytest.raises(ValueError, match=message):
        config.check()


@pytest.mark.skipif(importlib.util.find_spec("unsloth") is not None, reason="unsloth is installed here")
def test_unsloth_backend_without_unsloth_says_what_to_install(tmp_path: Path, fake_base: Path) -> None:
    with pytest.raises(BackendError, match=r"pip install 'unsloth"):
        resolve_backend("unsloth")
    assert resolve_backend("auto") == "peft"
    app = typer.Typer()
    app.command("finetune")(finetune_command)
    app.command("other")(lambda: None)  # two commands: `finetune` is then a subcommand, as in the real CLI
    data = write(tmp_path / "train.jsonl", [row(GOOD_ANSWERS["coder"])])
    args = ["finetune", "--agent", "coder", "--data", str(data), "--base-model", str(fake_base)]
    result = CliRunner().invoke(app, [*args, "--backend", "unsloth", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert UNSLOTH_INSTALL.split(":")[0] in " ".join(result.output.split())  # rich wraps lines: compare words


def test_cli_reports_a_bad_line_and_exits_2(tmp_path: Path, fake_base: Path) -> None:
    app = typer.Typer()
    app.command("finetune")(finetune_command)
    app.command("other")(lambda: None)
    data = write(tmp_path / "train.jsonl", ["{oops"])
    result = CliRunner().invoke(app, ["finetune", "--agent", "coder", "--data", str(data), "--base-model",
                                      str(fake_base), "--backend", "peft"])  # fmt: skip
    assert result.exit_code == 2
    assert "train.jsonl:1: not JSON" in " ".join(result.output.split())  # rich wraps lines: compare words


def test_module_shorthands() -> None:
    assert _modules("q,k,v,o") == ("q_proj", "k_proj", "v_proj", "o_proj")
    assert _modules("q_proj, gate ,down") == ("q_proj", "gate_proj", "down_proj")


def test_manifest_helpers(tmp_path: Path, fake_base: Path) -> None:
    first = base_model_hash(fake_base)
    (fake_base / "tokenizer.json").write_text("{}")  # not config or weights: same identity
    assert base_model_hash(fake_base) == first
    (fake_base / "model.safetensors").write_bytes(b"other weights")
    assert base_model_hash(fake_base) != first
    expected = hashlib.sha256(b"other weights").hexdigest()
    assert sha256_file(fake_base / "model.safetensors") == expected
    assert sha256_file(fake_base / "model.safetensors", chunk=4) == expected  # read in several chunks
    write_manifest(tmp_path, {"agent": "coder", "seconds": 1.0})
    assert read_manifest(tmp_path)["agent"] == "coder"
    (tmp_path / "manifest.json").write_text("{}")
    with pytest.raises(ValueError, match="no agent name"):
        read_manifest(tmp_path)


def _adapter(folder: Path, agent: str | None, files: bool = True) -> Path:
    folder.mkdir(parents=True)
    if agent is not None:
        (folder / "manifest.json").write_text(json.dumps({"agent": agent}))
    if files:
        (folder / "adapter_config.json").write_text("{}")
        (folder / "adapter_model.safetensors").write_bytes(b"")
    return folder


def test_serve_adapters_dir_maps_manifest_agents_to_folders(tmp_path: Path) -> None:
    coder = _adapter(tmp_path / "coder-run-3", "coder")
    planner = _adapter(tmp_path / "p", "planner")
    _adapter(tmp_path / "no-manifest", None)  # ignored: not a trained adapter
    (tmp_path / "notes.txt").write_text("x")
    assert discover_adapters(tmp_path) == {"coder": coder, "planner": planner}
    _adapter(tmp_path / "coder-run-4", "coder")
    with pytest.raises(ValueError, match="agent 'coder' in both coder-run-3 and coder-run-4"):
        discover_adapters(tmp_path)


def test_serve_adapters_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        discover_adapters(tmp_path / "missing")
    with pytest.raises(ValueError, match=r"no subfolder with a manifest\.json"):
        discover_adapters(tmp_path)
    _adapter(tmp_path / "broken", "coder", files=False)
    with pytest.raises(ValueError, match=r"has a manifest but no adapter_config\.json"):
        discover_adapters(tmp_path)


def test_unsloth_without_a_gpu_is_refused_up_front(monkeypatch: Any) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "unsloth" else real_find_spec(name, *a)
    )
    monkeypatch.setattr(train_module, "_gpu_available", lambda: False)
    with pytest.raises(BackendError, match="needs a CUDA GPU"):
        resolve_backend("unsloth")
    assert resolve_backend("auto") == "peft"  # installed but no GPU: auto stays portable


def test_losses_per_step_per_epoch_and_validation_come_from_trainers_log() -> None:
    # What Trainer logs with logging_steps=1 and eval each epoch: 2 steps per epoch, 2 epochs, and a
    # closing summary that carries no per-step loss; an evaluation before training has epoch 0 or none.
    history = [
        {"eval_loss": 2.5},
        {"loss": 2.0, "epoch": 0.5, "learning_rate": 1e-3},
        {"loss": 1.0, "epoch": 1.0, "learning_rate": 5e-4},
        {"eval_loss": 1.2, "epoch": 1.0},
        {"loss": 0.75, "epoch": 1.5, "learning_rate": 2e-4},
        {"loss": 0.25, "epoch": 2.0, "learning_rate": 0.0},
        {"eval_loss": 0.4, "epoch": 2.0},
        {"train_loss": 1.0, "train_runtime": 3.0, "epoch": 2.0},
    ]
    steps, per_epoch, validation = train_module._losses(history)
    assert steps == [2.0, 1.0, 0.75, 0.25]
    assert per_epoch == [1.5, 0.5]
    assert validation == [1.2, 0.4]


def test_importing_trl_for_training_leaves_vllm_logging_alone() -> None:
    # In a fresh process: TRL sets VLLM_LOGGING_LEVEL=ERROR on import, which silenced every vLLM server
    # the pipeline started after training.
    pytest.importorskip("trl")
    script = ("import os; from mapcoder_lite.finetune.train import _import_trl; _import_trl(); "
              "print(os.environ.get('VLLM_LOGGING_LEVEL'))")
    env = {k: v for k, v in os.environ.items() if k != "VLLM_LOGGING_LEVEL"}
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.strip() == "None", shown.stdout + shown.stderr
    env["VLLM_LOGGING_LEVEL"] = "DEBUG"  # a user's own choice stays
    shown = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert shown.stdout.strip() == "DEBUG"


def test_length_grouped_order_is_a_shuffle_of_whole_steps_replayed_from_seed_and_epoch() -> None:
    """The order a resumed training replays: the same for the same seed and epoch, another each epoch,
    every example once per epoch, and micro-batches of near-equal lengths (the padding it saves)."""
    pytest.importorskip("transformers")
    lengths = [(i * 37) % 900 + 50 for i in range(160)]
    sampler = length_grouped_sampler(lengths, 16, seed=42)
    first = list(sampler)
    assert sorted(first) == list(range(160)) and list(sampler) == first
    assert list(length_grouped_sampler(lengths, 16, seed=42)) == first
    sampler.set_epoch(1)
    assert sorted(second := list(sampler)) == list(range(160)) and second != first

    def computed(order: list[int]) -> int:  # tokens a micro-batch of 4 computes: padded to its longest
        return sum(4 * max(lengths[i] for i in order[j:j + 4]) for j in range(0, len(order), 4))

    shuffled = list(range(160))
    random.Random(0).shuffle(shuffled)
    assert computed(first) < 1.1 * sum(lengths) < 1.3 * sum(lengths) < computed(shuffled)
