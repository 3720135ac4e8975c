"""Datasets as tensors: train / validation / test splits, seeded and stratified, held on a device."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Dataset", "Split"]


@dataclass(frozen=True)
class Split:
    """One split: ``x`` a float32 ``(N, C, H, W)`` tensor, ``y`` an int64 ``(N,)`` tensor."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device | str) -> Split:
        return Split(self.x.to(device), self.y.to(device))


@dataclass(frozen=True)
class Dataset:
    """A dataset ready for training: three splits on one device, and what a network needs."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    input_shape: tuple[int, int, int]  # (C, H, W)

    def to(self, device: torch.device | str) -> Dataset:
        return Dataset(
            self.name,
            self.train.to(device),
            self.val.to(device),
            self.test.to(device),
            self.num_classes,
            self.input_shape,
        )
