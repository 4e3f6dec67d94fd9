"""The CPU LoRA plugin's ops must compute what vLLM's torch ops compute, index for index, except that
vLLM's -1 ("no lora should be applied") really applies none: vLLM 0.32's CPU ops read the last slot."""

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


def _reference(weights: torch.Tensor, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """vLLM's inputs with an all-zero adapter slot appended and -1 pointed at it: "no adapter"."""
    return torch.cat([weights, torch.zeros_like(weights[:1])]), torch.where(idx < 0, weights.shape[0], idx)


@pytest.mark.parametrize(("tokens", "pool"), CASES)
def test_shrink_matches_vllm(tokens: int, pool: list[int]) -> None:
    x = torch.randn(tokens, 96, dtype=torch.bfloat16)
    a = torch.randn(4, 1, 8, 96, dtype=torch.bfloat16)
    idx = _indices(tokens, pool)
    ours, theirs = torch.zeros(tokens, 8), torch.zeros(tokens, 8)
    ref_a, ref_idx = _reference(a, idx)
    cpu_lora.bgmv_shrink(x, a, ours, idx, 0.5)
    lora_ops.bgmv_shrink(x, ref_a, theirs, ref_idx, 0.5)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(("tokens", "pool"), CASES)
@pytest.mark.parametrize("add_inputs", [True, False])
def test_expand_and_slice_match_vllm(tokens: int, pool: list[int], add_inputs: bool) -> None:
    x = torch.randn(tokens, 8)
    b = torch.randn(4, 1, 40, 8, dtype=torch.bfloat16)
    idx = _indices(tokens, pool)
    start = torch.randn(tokens, 48, dtype=torch.bfloat16)
    ref_b, ref_idx = _reference(b, idx)
    ours, theirs = start.clone(), start.clone()
    cpu_lora.bgmv_expand(x, b, ours, idx, add_inputs)
    lora_ops.bgmv_expand(x, ref_b, theirs, ref_idx, add_inputs)
    torch.testing.assert_close(ours, theirs)
    ours, theirs = start.clone(), start.clone()
    cpu_lora.bgmv_expand_slice(x, b, ours, idx, 4, 40, add_inputs)
    lora_ops.bgmv_expand_slice(x, ref_b, theirs, ref_idx, 4, 40, add_inputs)
    torch.testing.assert_close(ours, theirs)


def test_a_token_without_adapter_gets_none_where_vllm_reads_the_last_slot() -> None:
    x = torch.randn(4, 96)
    a = torch.randn(2, 1, 8, 96)
    idx = torch.tensor([0, -1, 1, -1])
    ours, theirs = torch.full((4, 8), 7.0), torch.full((4, 8), 7.0)
    cpu_lora.bgmv_shrink(x, a, ours, idx)
    lora_ops.bgmv_shrink(x, a, theirs, idx)
    assert torch.equal(ours[1], torch.zeros(8)) and torch.equal(ours[3], torch.zeros(8))
    torch.testing.assert_close(theirs[1], x[1] @ a[1, 0].T)  # vLLM's own op: the last adapter's product
    torch.testing.assert_close(ours[[0, 2]], theirs[[0, 2]])


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
