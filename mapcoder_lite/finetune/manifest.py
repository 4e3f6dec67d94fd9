"""`manifest.json` of a trained adapter: what it was trained on, how, and how it went.

Light on purpose (no torch): `serve --adapters DIR` and reports read manifests without the training stack.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any

from mapcoder_lite.files import MANIFEST_FILE, write_atomic

MANIFEST_FORMAT = "mapcoder-lite-adapter/1"
# The fields a complete manifest has (tests and readers rely on them).
MANIFEST_FIELDS = (
    "format", "agent", "backend", "base_model", "data", "validation", "hyperparameters", "losses",
    "trainable_parameters", "base_parameters", "trainable_share", "device", "dtype", "versions", "seconds", "created",
)  # fmt: skip
# The files that make up a checkpoint's identity: its config and its weights (not tokenizer extras).
_BASE_PATTERNS = ("config.json", "*.safetensors", "*.bin")
_VERSIONED = ("torch", "transformers", "peft", "trl", "accelerate", "unsloth")


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def base_model_files(model_dir: str | os.PathLike[str]) -> list[Path]:
    root = Path(model_dir)
    files = {p for pattern in _BASE_PATTERNS for p in root.glob(pattern) if p.is_file()}
    return sorted(files)


def base_model_hash(model_dir: str | os.PathLike[str]) -> str:
    """sha256 over (name, sha256) of the config and weight files: changes when the base model does."""
    files = base_model_files(model_dir)
    if not files:
        raise FileNotFoundError(f"{model_dir}: no config.json or weight files")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{path.name}\0{sha256_file(path)}\n".encode())
    return digest.hexdigest()


def package_versions(names: tuple[str, ...] = _VERSIONED) -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def write_manifest(adapter_dir: str | os.PathLike[str], manifest: dict[str, Any]) -> Path:
    path = Path(adapter_dir) / MANIFEST_FILE
    write_atomic(path, json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")  # never half a manifest
    return path


def read_manifest(adapter_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(adapter_dir) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable manifest ({error})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("agent"), str):
        raise ValueError(f"{path}: no agent name")
    return manifest
