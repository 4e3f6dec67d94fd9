"""The CPU LoRA plugin's ops must compute exactly what vLLM's torch ops compute, index for index."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
lora_ops = pytest.importorskip("vllm.lora.ops.torch_ops.lora_ops")

from mapcoder_lite.serving import cpu_lora  # noqa: E402

CASES = [  # (tokens, indices drawn from): one adapter, several, and vLLM's -1 ("no adapter") mixed in
    (1, [2]),
    (7, [0, 1, 2]),
    (64, [-1, 0, 3]),
    (300, [-1]),
]


def _indices(tokens: int, pool: list[int]) -> torch.Tensor:
    gen = torch.Generator().manual_seed(tokens)
    return torch.tensor(pool)[torch.randint(0, len(pool), (tokens,), generator=gen)]


@pytest.mark.parametrize(("tokens", "pool"), CASES)
def test_shrink_matches_vllm(tokens: int, pool: list[int]) -> None:
    x = torch.randn(tokens, 96, dtype=torch.bfloat16)
    a = torch.randn(4, 1, 8, 96, dtype=torch.bfloat16)
    idx = _indices(tokens, pool)
    ours, theirs = torch.zeros(tokens, 8), torch.zeros(tokens, 8)
    cpu_lora.bgmv_shrink(x, a, ours, idx, 0.5)
    lora_ops.bgmv_shrink(x, a, theirs, idx, 0.5)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("tokens", "pool"), CASES)
@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_and_slice_match_vllm(tokens: int, pool: list[int], add_inputs: bool) -> None:
    x = torch.randn(tokens, 8)
    b = torch.randn(4, 1, 40, 8, dtype=torch.bfloat16)
    idx = _indices(tokens, pool)
    start = torch.randn(tokens, 48, dtype=torch.bfloat16)
    ours, theirs = start.clone(), start.clone()
    cpu_lora.bgmv_expand(x, b, ours, idx, add_inputs)
    lora_ops.bgmv_expand(x, b, theirs, idx, add_inputs)
    torch.testing.assert_close(ours, theirs)
    ours, theirs = start.clone(), start.clone()
    cpu_lora.bgmv_expand_slice(x, b, ours, idx, 4, 40, add_inputs)
    lora_ops.bgmv_expand_slice(x, b, theirs, idx, 4, 40, add_inputs)
    torch.testing.assert_close(ours, theirs)


def test_register_patches_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    punica_cpu = pytest.importorskip("vllm.lora.punica_wrapper.punica_cpu")
    original = punica_cpu.bgmv_shrink
    for module in (punica_cpu, lora_ops):  # register() patches module globals: restore them after the test
        for name in ("bgmv_shrink", "bgmv_expand", "bgmv_expand_slice"):
            monkeypatch.setattr(module, name, getattr(module, name))
    monkeypatch.delenv("MAPCODER_LITE_CPU_LORA", raising=False)
    cpu_lora.register()
    assert punica_cpu.bgmv_shrink is original
    monkeypatch.setenv("MAPCODER_LITE_CPU_LORA", "grouped")
    cpu_lora.register()
    assert punica_cpu.bgmv_shrink is cpu_lora.bgmv_shrink
    assert lora_ops.bgmv_shrink is cpu_lora.bgmv_shrink
