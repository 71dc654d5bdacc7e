"""The order in which training rows form batches: seeded by (seed, epoch), so a resumed run
sees the very batches an uninterrupted one would.

By default an epoch is one permutation of every training row, so a batch holds labelled and
unlabelled images in the proportion the data has (on LFW 1,897 of 10,648: ~18%, ~11 of 64).
With ``data.labelled_share`` = s every batch holds round(s · batch) labelled rows and the rest
unlabelled ones, each set drawn from its own permutations (a new one whenever the set runs
out), so the condition reaches the networks in a fixed share of every update while the
unlabelled images still supply variety."""
from __future__ import annotations

import torch


def epoch_order(seed: int, epoch: int, labelled: torch.Tensor, batch: int, batches: int,
                share: float | None = None) -> torch.Tensor:
    """Training-row positions of epoch ``epoch``, batch after batch (a batch is ``batch``
    consecutive entries; ``batches`` of them are used). ``labelled``: 1 for a labelled row,
    0 for an unlabelled one. Without a share that applies (``share_applies``): a permutation
    of every row."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    if not share_applies(labelled, share):
        return torch.randperm(len(labelled), generator=generator)
    per_batch = labelled_per_batch(share, batch)
    labelled_rows = torch.nonzero(labelled > 0).flatten()
    unlabelled_rows = torch.nonzero(labelled <= 0).flatten()
    taken_labelled = _cycled(labelled_rows, batches * per_batch, generator).view(batches, per_batch)
    taken_unlabelled = _cycled(unlabelled_rows, batches * (batch - per_batch),
                               generator).view(batches, batch - per_batch)
    return torch.cat([taken_labelled, taken_unlabelled], dim=1).flatten()


def share_applies(labelled: torch.Tensor, share: float | None) -> bool:
    """Whether a labelled share changes anything: it is set and the training set holds both
    labelled and unlabelled rows (with ``data.unlabelled=skip``, or a fully labelled dataset,
    every batch is labelled anyway)."""
    count = int((labelled > 0).sum())
    return share is not None and 0 < count < len(labelled)


def labelled_per_batch(share: float, batch: int) -> int:
    """round(share · batch), at least 1."""
    return max(1, min(batch, round(share * batch)))


def _cycled(rows: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` entries of ``rows``: successive random permutations of them, concatenated."""
    if count == 0:
        return rows[:0]
    permutations = [rows[torch.randperm(len(rows), generator=generator)] for _ in range(-(-count // len(rows)))]
    return torch.cat(permutations)[:count]
