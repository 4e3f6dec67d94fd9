"""The order training batches are drawn in: whole optimizer steps of near-equal lengths.

Padding each micro-batch to its longest example costs the compute of the padding; grouping examples of
similar length into one step saves most of it (`benchmarks/train_batching.py` measures how much).
"""

from __future__ import annotations

from typing import Any


def length_grouped_sampler(lengths: list[int], step: int, seed: int) -> Any:
    """Transformers' length-grouped order (shuffled groups of whole optimizer steps, each sorted by
    length), drawn from `seed` and the epoch: Transformers' own sampler draws from the global random
    state, which a resumed training restores only after the epoch's order is drawn, so it went on
    with other batches than the run it resumed."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices

    class EpochSeededLengthGroupedSampler(torch.utils.data.Sampler):
        def __init__(self) -> None:
            self.epoch = 0

        def set_epoch(self, epoch: int) -> None:  # the Trainer calls it at the start of each epoch
            self.epoch = epoch

        def __len__(self) -> int:
            return len(lengths)

        def __iter__(self) -> Any:
            generator = torch.Generator().manual_seed(seed + self.epoch)
            return iter(get_length_grouped_indices(lengths, step, generator=generator))

    return EpochSeededLengthGroupedSampler()
