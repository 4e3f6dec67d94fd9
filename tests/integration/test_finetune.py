"""Fine-tuning end to end on SmolLM2-135M: answer-only masking, a few real steps, and vLLM serving the result.

The training run is tiny (8 coder examples, 4 steps of batch 4, lr 1e-3, 256 tokens) so it fits in a
minute on a shared CPU; the validation file is the training file, so "the loss went down" compares
the same examples before and after training. The adapter is then served by a vLLM server of its own
(the session server's adapters are fixed at start), found through `serve --adapters`' discovery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import need, vllm_python

pytestmark = pytest.mark.integration

TASKS = [
    ("add two numbers a and b", "def add(a, b):\n    return a + b"),
    ("reverse a string s", "def reverse(s):\n    return s[::-1]"),
    ("square a number x", "def square(x):\n    return x * x"),
    ("return the maximum of a list xs", "def maximum(xs):\n    return max(xs)"),
    ("count the vowels in a string s", "def vowels(s):\n    return sum(c in 'aeiou' for c in s)"),
    ("check whether n is even", "def is_even(n):\n    return n % 2 == 0"),
    ("sum a list xs", "def total(xs):\n    return sum(xs)"),
    ("return the length of a list xs", "def length(xs):\n    return len(xs)"),
]
SYSTEM = "You are a programmer. Answer with one Python code block and nothing else."


def example(task: str, code: str) -> dict:
    return {
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": f"Write a function to {task}."}],
        "completion": [{"role": "assistant", "content": f"```python\n{code}\n```"}],
    }


@pytest.fixture(scope="module")
def coder_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sft") / "coder.jsonl"
    path.write_text("".join(json.dumps(example(t, c)) + "\n" for t, c in TASKS))
    return path


def test_only_the_answer_is_trained(model_dir: Path) -> None:
    need(["transformers"])
    from transformers import AutoTokenizer

    from mapcoder_lite.finetune.train import tokenize_example

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    ex = example(*TASKS[0])
    row = tokenize_example(tokenizer, ex, 256)
    assert row is not None
    answer = [t for t, label in zip(row["input_ids"], row["labels"], strict=True) if label != -100]
    prompt_len = row["labels"].index(next(x for x in row["labels"] if x != -100))
    assert all(x == -100 for x in row["labels"][:prompt_len])
    # The trained tokens are the assistant turn: the answer and its end-of-turn marker, nothing of the prompt.
    decoded = tokenizer.decode(answer)
    assert decoded.startswith(ex["completion"][0]["content"])
    assert SYSTEM not in decoded and "Write a function" not in decoded
    assert tokenizer.eos_token in decoded or "<|im_end|>" in decoded
    assert tokenize_example(tokenizer, ex, 8) is None  # the prompt alone fills 8 tokens: nothing to learn


def test_finetune_lowers_the_loss_and_vllm_serves_the_adapter(
    model_dir: Path, coder_data: Path, tmp_path: Path
) -> None:
    need(["torch", "transformers", "peft"])
    from mapcoder_lite.finetune.manifest import MANIFEST_FIELDS, base_model_hash, read_manifest
    from mapcoder_lite.finetune.train import TrainConfig, train

    out = tmp_path / "adapters" / "coder-run"
    config = TrainConfig(agent="coder", data=coder_data, validation=coder_data, base_model=model_dir, out=out,
                         backend="peft", batch=4, micro_batch=4, max_steps=4, lr=1e-3, max_length=256, seed=0,
                         progress=False)  # fmt: skip
    result = train(config)

    files = sorted(p.name for p in out.iterdir())
    assert files == ["adapter_config.json", "adapter_model.safetensors", "manifest.json"]  # all vLLM loads, + ours
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    assert adapter_config["r"] == 32 and adapter_config["lora_alpha"] == 32
    assert sorted(adapter_config["target_modules"]) == ["k_proj", "o_proj", "q_proj", "v_proj"]
    assert not adapter_config.get("modules_to_save")

    manifest = read_manifest(out)
    assert manifest == result.manifest
    assert set(MANIFEST_FIELDS) <= set(manifest)
    assert manifest["agent"] == "coder" and manifest["backend"] == "peft"
    assert manifest["base_model"]["sha256"] == base_model_hash(model_dir)
    assert manifest["data"]["examples"] == len(TASKS) and len(manifest["data"]["sha256"]) == 64
    assert manifest["hyperparameters"]["steps"] == 4 and manifest["hyperparameters"]["rank"] == 32
    assert manifest["hyperparameters"]["gradient_accumulation"] == 1
    assert 0 < manifest["trainable_share"] < 0.05  # rank-32 q/k/v/o on 135M: about 2.7 %
    assert manifest["versions"]["torch"] and manifest["versions"]["peft"] and manifest["versions"]["trl"]
    assert manifest["hyperparameters"]["trainer"] == "trl.SFTTrainer"
    losses = manifest["losses"]
    assert len(losses["train_per_step"]) == 4 and len(losses["train_per_epoch"]) == 2
    # Same 8 examples before and after: the answer-only loss must drop clearly.
    assert losses["validation_per_epoch"][-1] < 0.8 * losses["validation_before"], losses

    need(["vllm"])
    from mapcoder_lite.serving.vllm import VLLMServer, discover_adapters

    loras = discover_adapters(out.parent)  # what `serve --adapters DIR` does
    assert loras == {"coder": out}
    messages = example(*TASKS[0])["prompt"]
    # One OpenMP thread on the last core: vLLM's default binding starts at core 0, where the session
    # server (or any other vLLM on the machine) already spins; two workers on one core starve each other.
    last_core = str(max(os.sched_getaffinity(0)))
    pinned = {"VLLM_CPU_OMP_THREADS_BIND": last_core, "VLLM_CPU_NUM_OF_RESERVED_CPU": "0", "OMP_NUM_THREADS": "1"}
    with VLLMServer(model_dir, loras, max_model_len=1024, kv_cache_gib=1, python=vllm_python(), env=pinned,
                    log_path=tmp_path / "vllm.log", startup_timeout_s=600) as server:  # fmt: skip
        answers = {}
        for name in ("coder", server.served_model_name):
            response = httpx.post(f"{server.base_url}/chat/completions", timeout=300, json={
                "model": name, "messages": messages, "temperature": 0, "max_tokens": 64})  # fmt: skip
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["model"] == name  # routed to the adapter by its name
            answers[name] = body["choices"][0]["message"]["content"]
    # Four steps on these 8 examples make the adapter answer with the bare code block it was trained on,
    # while the base model adds prose: a greedy answer that differs shows vLLM applied the trained weights.
    assert answers["coder"].strip() != answers[server.served_model_name].strip(), answers


def test_a_stopped_training_resumes_from_its_checkpoint_as_if_never_stopped(
    model_dir: Path, coder_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    need(["torch", "transformers", "peft"])
    from transformers import TrainerCallback

    from mapcoder_lite.finetune import checkpoints
    from mapcoder_lite.finetune import train as training
    from mapcoder_lite.finetune.manifest import read_manifest

    settings = dict(agent="coder", data=coder_data, validation=coder_data, base_model=model_dir, backend="peft",
                    batch=2, micro_batch=2, max_steps=4, lr=1e-3, max_length=256, seed=0, progress=False,
                    checkpoint_minutes=0)  # fmt: skip
    whole = training.train(training.TrainConfig(out=tmp_path / "whole", **settings)).manifest

    class StopAtStep3(TrainerCallback):  # Ctrl-C during step 3: step 2's checkpoint is the last one
        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if state.global_step == 3:
                raise KeyboardInterrupt

    progress = training._progress_callback
    monkeypatch.setattr(training, "_progress_callback", lambda *a: StopAtStep3())
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        training.train(training.TrainConfig(out=out, **settings))
    folder = checkpoints.folder_of(out)
    assert checkpoints.last_checkpoint(folder) == folder / "checkpoint-2" and not out.exists()
    before = json.loads((folder / "checkpoint-2" / checkpoints.SECONDS_FILE).read_text())["seconds"]

    monkeypatch.setattr(training, "_progress_callback", progress)
    resumed = training.train(training.TrainConfig(out=out, **settings)).manifest
    assert resumed["resumed_from_step"] == 2 and whole["resumed_from_step"] is None
    assert resumed["hyperparameters"]["steps"] == 4 and not folder.exists()  # done: nothing left to resume
    assert resumed["seconds"] > before > 0  # the first sitting's time up to its checkpoint counts too
    # The same steps on the same batches from the same state: the losses of the run that never stopped.
    assert resumed["losses"]["train_per_step"] == pytest.approx(whole["losses"]["train_per_step"], rel=1e-3)
    assert resumed["losses"]["validation_before"] == whole["losses"]["validation_before"]  # kept, not re-measured
    assert resumed["losses"]["validation_per_epoch"] == pytest.approx(whole["losses"]["validation_per_epoch"],
                                                                      rel=1e-3)
    assert read_manifest(out) == resumed
