"""Each training setting is declared once, as a `TrainConfig` field: the `finetune` command and the
pipeline's [finetune] table are built from the fields, and these tests fail when the three disagree
(a field, option or key added in one place only, a default or description typed again elsewhere)."""

from __future__ import annotations

import json
import re
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any

import click
import pytest
from typer.main import get_command
from typer.testing import CliRunner

from mapcoder_lite.cli import app
from mapcoder_lite.finetune import cli as finetune_cli
from mapcoder_lite.finetune.train import TrainConfig, TrainResult
from mapcoder_lite.pipeline import parse_config
from mapcoder_lite.pipeline.config import FinetuneConfig, training_settings

FIELDS = {spec.name: spec for spec in fields(TrainConfig)}
CLI_FIELDS = [name for name, spec in FIELDS.items() if spec.metadata["cli"]]
PIPELINE_FIELDS = [name for name, spec in FIELDS.items() if spec.metadata["pipeline"]]
PIPELINE_OWN_KEYS = ["agents", "min_examples"]  # which agents train, and on how little data


def finetune_options() -> dict[str, click.Parameter]:
    command = get_command(app).commands["finetune"]  # type: ignore[attr-defined]
    return {param.name: param for param in command.params if param.name}


def test_every_field_has_a_description_and_says_where_else_it_is_set() -> None:
    for name, spec in FIELDS.items():
        assert set(spec.metadata) == {"help", "cli", "pipeline", "recorded"}, name
        assert spec.metadata["help"].strip(), name


def test_the_finetune_options_are_the_fields_with_their_defaults_and_descriptions() -> None:
    options = finetune_options()
    assert list(options) == CLI_FIELDS
    for name in CLI_FIELDS:
        spec, option = FIELDS[name], options[name]
        assert option.help == spec.metadata["help"], name  # type: ignore[attr-defined]
        if spec.default is MISSING:
            assert option.required, name
        elif name in finetune_cli._AS_TEXT:
            assert finetune_cli._AS_TEXT[name][0](option.default) == spec.default, name
        else:
            assert option.default == spec.default, name


def test_the_pipeline_table_is_its_own_keys_then_the_fields_with_their_defaults() -> None:
    keys = [spec.name for spec in fields(FinetuneConfig)]
    assert keys == PIPELINE_OWN_KEYS + PIPELINE_FIELDS
    table = FinetuneConfig()
    for name in PIPELINE_FIELDS:
        assert table.__dataclass_fields__[name].metadata == FIELDS[name].metadata, name
    assert training_settings(table) == {name: FIELDS[name].default for name in PIPELINE_FIELDS}


def test_python_cli_and_pipeline_train_with_the_same_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    required = {"agent": "coder", "data": Path("train.jsonl"), "base_model": Path("base")}
    python = TrainConfig(**required)
    pipeline = TrainConfig(**required, **training_settings(parse_config({}).finetune))
    assert pipeline == python
    seen: list[TrainConfig] = []

    def fake_train(config: TrainConfig) -> TrainResult:
        seen.append(config)
        losses = {"train_per_epoch": [], "validation_per_epoch": []}
        return TrainResult(Path("adapters/coder"), {"losses": losses, "seconds": 0})

    monkeypatch.setattr(finetune_cli, "train", fake_train)
    result = CliRunner().invoke(app, ["finetune", "--agent", "coder", "--data", "train.jsonl", "--base-model", "base"])
    assert result.exit_code == 0, result.output
    assert seen == [python]


def test_the_flags_and_keys_users_have_keep_their_names() -> None:
    """Scripts and config files name these; a renamed field would break them."""
    flags = [option.opts[0] for option in finetune_options().values()]
    assert flags == ["--agent", "--data", "--base-model", "--out", "--validation", "--backend", "--rank", "--alpha",
                     "--modules", "--epochs", "--batch", "--micro-batch", "--group-by-length", "--lr", "--max-steps",
                     "--max-length", "--gradient-checkpointing", "--seed", "--checkpoint-minutes", "--dtype",
                     "--language", "--overwrite"]
    assert PIPELINE_FIELDS == ["backend", "rank", "alpha", "modules", "epochs", "batch", "micro_batch",
                               "group_by_length", "lr", "max_steps", "max_length", "gradient_checkpointing", "seed",
                               "checkpoint_minutes", "dtype"]


@pytest.mark.parametrize(("table", "message"), [
    ({"rank": 64}, "[finetune] rank 64: vLLM serves ranks 1..32"),
    ({"modules": []}, "[finetune] modules: none given"),
    ({"epochs": 0}, "[finetune] epochs must be at least 1"),
    ({"dtype": "int8"}, "[finetune] dtype 'int8'"),
    ({"checkpoint_minutes": -1}, "[finetune] checkpoint_minutes must be 0 or more"),
])
def test_bad_training_values_in_the_config_are_named_before_anything_runs(table: dict[str, Any],
                                                                           message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_config({"finetune": table})


def test_a_training_resumes_only_its_own_newest_complete_checkpoint(tmp_path: Path) -> None:
    from mapcoder_lite.finetune.checkpoints import REQUEST_FILE, folder_of, last_checkpoint, resume_point

    folder = folder_of(tmp_path / "adapters" / "coder")
    assert folder == tmp_path / "adapters" / "coder.checkpoints"  # beside the adapter, never served
    request = {"agent": "coder", "hyperparameters": {"lr": 0.0002, "modules": ["q_proj"]}, "data": "ab12"}
    assert resume_point(folder, request) is None  # nothing yet: the folder is set up for this request
    for step, complete in ((2, True), (10, True), (11, False)):  # 11: stopped while it was being written
        (folder / f"checkpoint-{step}").mkdir()
        if complete:
            (folder / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    (folder / "checkpoint-x").mkdir()
    assert last_checkpoint(folder) == folder / "checkpoint-10"
    assert resume_point(folder, request) == folder / "checkpoint-10"

    # New data and another lr: these checkpoints are not of this training, and may hold hours of one.
    other = request | {"data": "cd34", "hyperparameters": {"lr": 0.001, "modules": ["q_proj"]}}
    with pytest.raises(ValueError, match=r"coder.checkpoints holds a stopped training \(checkpoint-10\) made with "
                                         r"other data, lr: .* pass --overwrite"):
        resume_point(folder, other)
    assert last_checkpoint(folder) == folder / "checkpoint-10"  # kept
    assert resume_point(folder, other, replace=True) is None  # the adapter is replaced anyway: start afresh
    assert [p.name for p in folder.iterdir()] == [REQUEST_FILE]
    assert json.loads((folder / REQUEST_FILE).read_text()) == other
