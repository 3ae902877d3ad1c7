"""Training data: pixels and observing conditions, read a batch at a time.

DataLoader workers only read: one :meth:`TrainingObjects.__getitems__` call per batch asks the
survey for all of the batch's images at once (the reader sorts the ids and reads contiguous runs
of rows, then returns them in the batch's order) and for the catalog columns the augmentations
need. The augmentations themselves run in the training step, batched on the training device.

:class:`ShuffledBatches` is the distributed sampler: epoch e shuffles the object ids with seed
``seed + e``; global step s takes the next ``batch_size x world_size`` ids of that permutation,
and rank r its r-th share, as ``DistributedSampler`` would. It is a pure function of the step,
so resuming at step s reproduces the batches of an uninterrupted run exactly.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ml.augment import CONDITION_COLUMNS, observing_conditions
from ml.survey import Survey


class TrainingObjects(Dataset):
    """Objects of a survey as training inputs: images and observing conditions.

    A batch is a dict of tensors: ``ids`` (B,) int64, ``images`` (B, 3, H, W) float32
    nanomaggies, ``ebv`` (B,), ``psf_sigma_pix`` (B, 3) and ``noise_sigma`` (B, 3).
    """

    def __init__(self, survey: Survey) -> None:
        self.survey = survey
        missing = [c for c in CONDITION_COLUMNS if c not in survey.columns]
        if missing:
            raise ValueError(f"{survey.path} lacks the catalog columns {missing} that the "
                             "augmentations need")

    def __len__(self) -> int:
        return self.survey.n

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.__getitems__([index])

    def __getitems__(self, indices: list[int]) -> dict[str, torch.Tensor]:
        ids = np.asarray(indices, dtype=np.int64)
        images = self.survey.read_images(ids)  # (B, 3, H, W)
        ebv, psf_sigma_pix, noise_sigma = observing_conditions(
            self.survey.catalog(CONDITION_COLUMNS, ids))
        return {
            "ids": torch.from_numpy(ids),
            "images": torch.from_numpy(images),
            "ebv": torch.from_numpy(ebv),
            "psf_sigma_pix": torch.from_numpy(psf_sigma_pix),
            "noise_sigma": torch.from_numpy(noise_sigma),
        }


def keep_batch(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Collate function: ``__getitems__`` already returns a batch."""
    return batch


class ShuffledBatches(Sampler[list[int]]):
    """Endless, resumable, distributed batches of object ids (see the module docstring).

    Args:
        n: number of objects.
        batch_size: ids per rank and step.
        rank, world_size: this process and the number of processes.
        seed: seed of the epoch permutations.
        start_step: the first global step to yield (a resumed run's step).
    """

    def __init__(self, n: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 seed: int = 0, start_step: int = 0) -> None:
        self.n, self.batch_size = n, batch_size
        self.rank, self.world_size = rank, world_size
        self.seed, self.start_step = seed, start_step
        self.global_batch = batch_size * world_size
        if n < self.global_batch:
            raise ValueError(f"the survey holds {n} objects, fewer than one global batch "
                             f"({batch_size} x {world_size} ranks); lower batch_size")
        self.steps_per_epoch = n // self.global_batch  # the last partial batch is dropped

    def epoch_of(self, step: int) -> int:
        return step // self.steps_per_epoch

    def batch(self, step: int, perm: torch.Tensor | None = None) -> list[int]:
        """The ids this rank trains on at global step ``step``."""
        if perm is None:
            perm = self._permutation(self.epoch_of(step))
        lo = (step % self.steps_per_epoch) * self.global_batch + self.rank * self.batch_size
        return perm[lo:lo + self.batch_size].tolist()

    def _permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed + epoch)
        return torch.randperm(self.n, generator=g)

    def __iter__(self) -> Iterator[list[int]]:
        step = self.start_step
        epoch = self.epoch_of(step)
        perm = self._permutation(epoch)
        while True:
            if self.epoch_of(step) != epoch:
                epoch = self.epoch_of(step)
                perm = self._permutation(epoch)
            yield self.batch(step, perm)
            step += 1


def make_loader(survey: Survey, sampler: ShuffledBatches, num_workers: int,
                pin_memory: bool) -> DataLoader:
    """A DataLoader whose workers read whole batches (one sorted survey read each)."""
    return DataLoader(
        TrainingObjects(survey), batch_sampler=sampler, collate_fn=keep_batch,
        num_workers=num_workers, pin_memory=pin_memory,
        persistent_workers=num_workers > 0, prefetch_factor=4 if num_workers > 0 else None,
        # its own generator: creating the iterator must not draw from torch's global one,
        # which a resumed run restores and the BN-group shuffles use
        generator=torch.Generator().manual_seed(0),
    )
