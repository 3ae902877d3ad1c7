"""The trained encoder: cutouts in nanomaggies -> representations, from a checkpoint alone.

``galsearch embed``, ``galsearch evaluate`` and the server's uploaded-cutout seeds all call
:class:`Encoder`, so the preprocessing (central crop on the network's grid, arcsinh stretch:
:func:`ml.augment.center_view` with the run's own augmentation settings) and the network cannot
drift apart between them.

    encoder = Encoder.from_checkpoint("models/demo/release.pt")
    reps = encoder.embed(images)            # images: (N, 3, H, W) g, r, z nanomaggies
    reps["prehead"]  # (N, D) float32: the representation used for search (D = 512 x width/64
                     # for ResNet-10/18/34, 2048 x width/64 for ResNet-50)
    reps["head"]     # (N, 128) float32: the MLP head's output, the space MoCo contrasted in

Both training (``checkpoint.pt``) and release (``release.pt``, float16) checkpoints load; the
weights run in float32.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ml.augment import AugmentConfig, AugmentStats, center_view
from ml.moco import MoCoArgs, build_query_encoder, feature_dim, features
from ml.train import checkpoint as ckpt_io


class Encoder:
    """A query encoder with its preprocessing.

    Args:
        network: the query encoder (backbone with its ``fc`` head), any weights.
        model_args: the arguments it was built from.
        augment: the training run's augmentation settings (crop, out_size, stretch).
        sha256: hash of the checkpoint file ("" when not from a file).
        device: where the network runs.
        augment_stats: the distributions the run drew its augmentations from.
    """

    def __init__(self, network: nn.Module, model_args: MoCoArgs, augment: AugmentConfig,
                 sha256: str = "", device: str | torch.device = "cpu",
                 augment_stats: AugmentStats | None = None) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval()
        self.model_args = model_args
        self.augment = augment
        self.sha256 = sha256
        self.augment_stats = augment_stats
        self.path: Path | None = None
        self.dims = {"prehead": feature_dim(self.network), "head": model_args.dim}

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str | torch.device = "cpu",
                        ) -> Encoder:
        """Rebuild the encoder from a training or release checkpoint (the file alone).

        Raises:
            ml.train.checkpoint.CheckpointError: not a galsearch checkpoint, or unreadable.
        """
        ckpt = ckpt_io.load(path)
        args = MoCoArgs.from_dict(ckpt["model_args"])
        network = build_query_encoder(args)
        network.load_state_dict(ckpt_io.query_encoder_state(ckpt))
        # only crop, out_size and the stretch act at inference: settings that a later
        # galsearch no longer knows (an older checkpoint) are dropped rather than refused
        known = {f.name for f in fields(AugmentConfig)}
        augment = AugmentConfig.from_dict({k: v for k, v in ckpt["config"]["augment"].items()
                                           if k in known})
        encoder = cls(network, args, augment,
                      sha256=file_sha256(path), device=device,
                      augment_stats=AugmentStats.from_dict(ckpt["augment_stats"]))
        encoder.path = Path(path)
        return encoder

    def with_random_weights(self, seed: int = 0) -> Encoder:
        """The same architecture and preprocessing with freshly initialised weights: the
        random-weights baseline of the evaluation (see :meth:`calibrate_bn`)."""
        torch.manual_seed(seed)
        network = build_query_encoder(self.model_args)
        return Encoder(network, self.model_args, self.augment, sha256="", device=self.device,
                       augment_stats=self.augment_stats)

    @torch.no_grad()
    def calibrate_bn(self, views: torch.Tensor, batch_size: int = 256) -> None:
        """Re-estimate every BN layer's statistics on network-ready views (no weight changes).

        An untrained network's BN layers normalise with mean 0 and variance 1, which lets
        activations drift in scale with depth; statistics of real inputs (a cumulative average
        over train-mode passes) give the usual, stronger, random-weights baseline.
        """
        for m in self.network.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the batches
        self.network.train()
        for lo in range(0, len(views), batch_size):
            features(self.network, _as_tensor(views[lo:lo + batch_size]).to(self.device))
        self.network.eval()

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) g, r, z nanomaggies -> (N, 3, S, S) network input (central view)."""
        return center_view(images, self.augment.crop, self.augment.out_size,
                           self.augment.stretch())

    def embed(self, images: np.ndarray | torch.Tensor, batch_size: int = 256,
              progress: bool = False) -> dict[str, np.ndarray]:
        """Representations of cutouts, a batch at a time.

        Args:
            images: (N, 3, H, W) g, r, z in nanomaggies (numpy, memmap or tensor), H, W >= crop.
            batch_size: images per forward pass.
            progress: show a tqdm bar.

        Returns:
            ``{"prehead": (N, D) float32, "head": (N, dim) float32}`` numpy arrays.
        """
        if len(images) and (np.ndim(images) != 4 or images.shape[1] != 3):
            raise ValueError(f"images must be (N, 3, H, W) g, r, z cutouts; got shape "
                             f"{tuple(images.shape)}")
        return self._run(images, batch_size, progress, preprocess=True)

    def embed_views(self, views: torch.Tensor, batch_size: int = 256,
                    progress: bool = False) -> dict[str, np.ndarray]:
        """Representations of network-ready views (already on the network's grid and
        stretched, e.g. the output of :class:`ml.augment.Augment`): the evaluation's augmented
        copies."""
        return self._run(views, batch_size, progress, preprocess=False)

    @torch.inference_mode()
    def _run(self, images: np.ndarray | torch.Tensor, batch_size: int, progress: bool,
             preprocess: bool) -> dict[str, np.ndarray]:
        n = len(images)
        out = {"prehead": np.empty((n, self.dims["prehead"]), dtype=np.float32),
               "head": np.empty((n, self.dims["head"]), dtype=np.float32)}
        starts = range(0, n, batch_size)
        if progress:
            from tqdm import tqdm

            starts = tqdm(starts, desc="embedding", unit="batch")
        for lo in starts:
            x = _as_tensor(images[lo:lo + batch_size]).to(self.device)
            if preprocess:
                x = self.preprocess(x)
            h = features(self.network, x)
            out["prehead"][lo:lo + len(x)] = h.float().cpu().numpy()
            out["head"][lo:lo + len(x)] = self.network.fc(h).float().cpu().numpy()
        return out

    def __repr__(self) -> str:
        return (f"Encoder({self.model_args.arch}, width={self.model_args.width}, "
                f"dims={self.dims}, sha256={self.sha256[:12]})")


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _as_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(images, torch.Tensor):
        return images.float()
    return torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))

