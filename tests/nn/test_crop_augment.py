"""Augmentation: per-sample dihedral transforms, random crops and jitter, reproducible by seed."""

from __future__ import annotations

import torch

from napari_hcs.nn.augment import augment_batch


def test_augment_batch_is_a_dihedral_transform_and_reproducible():
    batch = torch.randn(16, 3, 8, 8)
    out = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=0)
    for original, augmented in zip(batch, out):
        variants = [torch.rot90(t, k, (-2, -1)) for t in (original, original.transpose(-1, -2)) for k in range(4)]
        assert any(torch.equal(augmented, v) for v in variants)
    again = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=4, intensity=0.1)
    same = augment_batch(batch, generator=torch.Generator().manual_seed(0), pad=4, intensity=0.1)
    assert again.shape == batch.shape and torch.equal(again, same)


def test_augment_batch_without_any_augmentation_is_the_identity():
    batch = torch.randn(4, 2, 8, 8)
    assert torch.equal(augment_batch(batch, dihedral=False, pad=0, intensity=0.0), batch)
