"""A training's checkpoints, so that one stopped (Ctrl-C, a lost machine, the end of a sitting) goes on
where it was: on this CPU one agent's adapter on the recipe's data takes longer than a sitting.

Every `checkpoint_minutes` Trainer saves a checkpoint (adapter, optimizer, scheduler, RNG states, its
state) into ``OUT.checkpoints/`` beside the adapter, with the request it belongs to (settings, hashes of
data and base model). The same request run again goes on from the newest complete checkpoint, skipping
the batches already trained; another request meets them as an error naming what differs, unless it
replaces the adapter anyway (`--overwrite`, the pipeline on new data) and starts afresh. `train`
removes the folder once the adapter is saved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mapcoder_lite.finetune.manifest import sha256_file

if TYPE_CHECKING:
    from mapcoder_lite.finetune.train import TrainConfig

SUFFIX = ".checkpoints"  # OUT.checkpoints/: the resumable state of OUT's training
REQUEST_FILE = "request.json"  # in it: what the checkpoints were made for
VALIDATION_BEFORE_FILE = "validation_before.json"  # in it: the loss before step 1 (a resume cannot measure it)
SECONDS_FILE = "seconds.json"  # in each checkpoint: the training's time up to it, over every sitting


def folder_of(out: str | os.PathLike[str]) -> Path:
    """Where the training of the adapter `out` keeps its checkpoints: beside it, not in it (`serve
    --adapters` reads only folders holding a manifest)."""
    out = Path(out)
    return out.with_name(out.name + SUFFIX)


def last_checkpoint(folder: Path) -> Path | None:
    """The newest complete checkpoint in `folder` (Trainer writes trainer_state.json last)."""
    steps = {int(m.group(1)): path for path in folder.glob("checkpoint-*")
             if (m := re.fullmatch(r"checkpoint-(\d+)", path.name)) and (path / "trainer_state.json").is_file()}
    return steps[max(steps)] if steps else None


def request(config: TrainConfig, backend: str, base_sha256: str, device: str, dtype: Any) -> dict[str, Any]:
    """What a checkpoint is a checkpoint of: every recorded setting, the data and the base model, as JSON."""
    made = {
        "agent": config.agent,
        "hyperparameters": {f.name: getattr(config, f.name) for f in fields(config) if f.metadata["recorded"]},
        "data": sha256_file(config.data),
        "validation": sha256_file(config.validation) if config.validation else None,
        "base_model": base_sha256,
        "backend": backend,
        "device": device,
        "dtype": str(dtype),
    }
    return json.loads(json.dumps(made))  # tuples as lists, as it reads back


def resume_point(folder: Path, request: dict[str, Any], *, replace: bool = False) -> Path | None:
    """The checkpoint to go on from: the last one of this same request. Checkpoints of another request
    cannot be resumed: with `replace` (the caller replaces the adapter anyway) they are removed, else
    they are an error naming what differs, since they may hold hours of training. The folder is then
    set up for this request."""
    recorded = folder / REQUEST_FILE
    try:
        before = json.loads(recorded.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        before = None
    checkpoint = last_checkpoint(folder) if folder.is_dir() else None
    if checkpoint and before == request:
        return checkpoint
    if checkpoint and not replace:
        changed = _differences(before if isinstance(before, dict) else {}, request)
        raise ValueError(f"{folder} holds a stopped training ({checkpoint.name}) made with other "
                         f"{', '.join(changed) or 'settings'}: run it with those to resume it, or pass "
                         "--overwrite (or delete the folder) to start afresh")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    recorded.write_text(json.dumps(request, indent=2), encoding="utf-8")
    return None


def _differences(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The request's keys (hyperparameters by name) whose values differ."""
    def changed(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
        return [key for key in sorted(set(a) | set(b)) if key != "hyperparameters" and a.get(key) != b.get(key)]

    return changed(before, now) + changed(before.get("hyperparameters") or {}, now.get("hyperparameters") or {})


def validation_before(trainer: Any, folder: Path) -> float:
    """The validation loss before the first step, measured once and kept with the checkpoints: a resumed
    training starts from trained weights and cannot measure it again."""
    kept = folder / VALIDATION_BEFORE_FILE
    if kept.is_file():
        return float(json.loads(kept.read_text())["eval_loss"])
    loss = trainer.evaluate()["eval_loss"]
    kept.write_text(json.dumps({"eval_loss": loss}))
    return loss


def seconds_before(resume: Path | None) -> float:
    """The time the sittings before this one spent up to the checkpoint it goes on from."""
    recorded = resume / SECONDS_FILE if resume else None
    return float(json.loads(recorded.read_text())["seconds"]) if recorded and recorded.is_file() else 0.0


def callback(minutes: float, seconds: Callable[[], float]) -> Any:
    """A TrainerCallback asking Trainer to save a checkpoint once `minutes` passed since the last (or the
    start): by the clock, because a step takes 1 s on a GPU and over a minute on this CPU. Each checkpoint
    gets the training's time up to it (`seconds()`)."""
    from transformers import TrainerCallback

    class CheckpointByClock(TrainerCallback):
        def __init__(self) -> None:
            self.last = time.monotonic()

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            # The last step's checkpoint would be removed at once: the adapter itself is saved then.
            if time.monotonic() - self.last >= minutes * 60 and state.global_step < state.max_steps:
                control.should_save = True

        def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            self.last = time.monotonic()
            saved = Path(args.output_dir) / f"checkpoint-{state.global_step}" / SECONDS_FILE
            saved.write_text(json.dumps({"seconds": round(seconds(), 2)}))

    return CheckpointByClock()
