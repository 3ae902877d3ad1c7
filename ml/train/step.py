"""One training step's pieces, shared by the loop and benchmarks/train_throughput.py."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ml.augment import Augment


@torch.no_grad()
def two_views(augment: Augment, batch: dict[str, torch.Tensor], device: torch.device,
              generator: torch.Generator, channels_last: bool = False,
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Query and key views of a batch, augmented together on the device (one pass, 2B views).

    Args:
        augment: the augmentation pipeline.
        batch: ``images`` (B, 3, H, W) nanomaggies, ``ebv`` (B,), ``psf_sigma_pix`` (B, 3),
            ``noise_sigma`` (B, 3), on any device.
        device: where to augment (the training device).
        generator: the augmentations' generator, on ``device``.
        channels_last: return NHWC-strided views.

    Returns:
        im_q, im_k: (B, 3, S, S) network-ready views.
    """
    def on_device(name: str) -> torch.Tensor:
        return batch[name].to(device, non_blocking=True)

    # both views of a cutout in one pass over it (Augment's copies), not from a doubled batch
    views = augment(on_device("images"), on_device("ebv"), on_device("psf_sigma_pix"),
                    on_device("noise_sigma"), generator=generator, copies=2)  # (2B, 3, S, S)
    if channels_last:
        views = views.contiguous(memory_format=torch.channels_last)
    im_q, im_k = views.chunk(2)
    return im_q, im_k


def contrastive_loss(net: nn.Module, im_q: torch.Tensor, im_k: torch.Tensor,
                     amp: torch.dtype | None) -> tuple[torch.Tensor, torch.Tensor]:
    """MoCo's forward (which also updates the key encoder and the queue) and InfoNCE loss.

    Returns:
        the scalar loss (float32) and the logits (B, 1 + K).
    """
    device_type = im_q.device.type
    with torch.autocast(device_type, dtype=amp or torch.float32, enabled=amp is not None):
        logits, labels = net(im_q, im_k)
    return F.cross_entropy(logits.float(), labels), logits
