"""MoCo v2 (He et al. 2020; Chen et al. 2020), in the style of facebookresearch/moco's builder.

A query encoder and a momentum ("key") encoder, both ``base_encoder(num_classes=dim)`` with a
2-layer MLP head, and a queue of the K most recent keys as the dictionary of negatives.
``forward(im_q, im_k)`` returns ``(logits, labels)`` for a plain cross-entropy: the positive
key is logit 0 of every row.

Batch normalisation. With BN over the whole batch in both encoders, the query and its positive
key are normalised with statistics of the same set of samples, and the network can find its
positive through those shared statistics instead of through the image ("the model cheats",
He et al. 2020, section 3.3). ``shuffle_bn`` chooses the remedy:

- ``"ddp"``: facebookresearch's shuffling BN. Keys are gathered from every rank, shuffled,
  and each rank normalises a random subset of them; needs ``torch.distributed``.
- ``"groups"``: the same on any device and any number of ranks. Queries are normalised in G
  groups (as on G devices), keys are permuted and normalised in G different groups, so a
  query and its key share about 1/G of their statistics.
- ``"none"``: plain BN (or SyncBN, when the trainer converts the encoders).

Nothing here calls ``.cuda()``: tensors follow the inputs' device, so the same model runs on
CPU in tests and on GPUs under torchrun.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.distributed as dist
from torch import nn

from ml.moco.backbone import feature_dim, features

SHUFFLE_BN_MODES = ("none", "groups", "ddp")


def make_encoder(base_encoder: Callable[..., nn.Module], dim: int, mlp: bool) -> nn.Module:
    """``base_encoder(num_classes=dim)`` with its ``fc`` replaced by MoCo v2's MLP head if mlp.

    The head is Linear(D, D) -> ReLU -> Linear(D, dim), where D is the backbone's feature size.
    """
    net = base_encoder(num_classes=dim)
    if mlp:
        dim_mlp = net.fc.weight.shape[1]
        net.fc = nn.Sequential(nn.Linear(dim_mlp, dim_mlp), nn.ReLU(), net.fc)
    return net


class MoCo(nn.Module):
    """MoCo v2 with a queue, a momentum encoder and device-agnostic shuffled BN.

    Args:
        base_encoder: constructor of the backbone, called as ``base_encoder(num_classes=dim)``;
            the result must be a torchvision-style ResNet with an ``fc`` layer.
        dim: embedding dimension of the head (128).
        K: queue length (number of negative keys).
        m: momentum of the key encoder update.
        T: softmax temperature.
        mlp: MoCo v2's 2-layer MLP head (False: MoCo v1's linear head).
        shuffle_bn: ``"groups"``, ``"ddp"`` or ``"none"`` (see the module docstring).
        bn_groups: G, the number of BN groups for ``shuffle_bn="groups"``.
    """

    def __init__(
        self,
        base_encoder: Callable[..., nn.Module],
        dim: int = 128,
        K: int = 65536,
        m: float = 0.999,
        T: float = 0.2,
        mlp: bool = True,
        shuffle_bn: str = "groups",
        bn_groups: int = 4,
    ) -> None:
        super().__init__()
        if shuffle_bn not in SHUFFLE_BN_MODES:
            raise ValueError(f"shuffle_bn must be one of {SHUFFLE_BN_MODES}; got {shuffle_bn!r}")
        if K < 1 or not 0.0 <= m <= 1.0 or T <= 0 or bn_groups < 1:
            raise ValueError(f"need K >= 1, 0 <= m <= 1, T > 0, bn_groups >= 1; got "
                             f"K={K}, m={m}, T={T}, bn_groups={bn_groups}")
        self.K, self.m, self.T = K, m, T
        self.shuffle_bn, self.bn_groups = shuffle_bn, bn_groups

        self.encoder_q = make_encoder(base_encoder, dim, mlp)
        self.encoder_k = make_encoder(base_encoder, dim, mlp)
        for param_q, param_k in zip(self.encoder_q.parameters(), self.encoder_k.parameters(),
                                    strict=True):
            param_k.data.copy_(param_q.data)  # initialise the key encoder as the query encoder
            param_k.requires_grad = False  # updated by momentum, not by gradient
        self.feature_dim = feature_dim(self.encoder_q)
        self.dim = dim

        # the queue of keys: dim x K, unit columns; saved with the model's state
        self.register_buffer("queue", nn.functional.normalize(torch.randn(dim, K), dim=0))
        self.register_buffer("queue_ptr", torch.zeros(1, dtype=torch.long))

    # -- momentum encoder and queue ---------------------------------------------------------
    @torch.no_grad()
    def _momentum_update_key_encoder(self) -> None:
        """theta_k <- m theta_k + (1 - m) theta_q, one fused op over all parameters."""
        params_k = [p.data for p in self.encoder_k.parameters()]
        params_q = [p.data for p in self.encoder_q.parameters()]
        torch._foreach_lerp_(params_k, params_q, 1.0 - self.m)

    @torch.no_grad()
    def _dequeue_and_enqueue(self, keys: torch.Tensor) -> None:
        """Write keys (N x dim) at the pointer, wrapping around the end of the queue.

        K need not be a multiple of the batch. All arithmetic stays on the device (no
        ``int(ptr)``), so the step does not wait for the GPU.
        """
        keys = concat_all_gather(keys)
        n = keys.shape[0]
        if n > self.K:  # only the last K keys can be held
            keys, n = keys[-self.K:], self.K
        idx = (self.queue_ptr + torch.arange(n, device=keys.device)) % self.K  # (n,)
        self.queue[:, idx] = keys.T.to(self.queue.dtype)
        self.queue_ptr.add_(n).remainder_(self.K)

    # -- batch normalisation groups -----------------------------------------------------------
    def _grouped(self, encoder: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """Run the encoder on G chunks of x, so BN statistics are per chunk."""
        groups = min(self.bn_groups, x.shape[0])
        if groups == 1:
            return encoder(x)
        return torch.cat([encoder(chunk) for chunk in x.chunk(groups)])

    @torch.no_grad()
    def _batch_shuffle_ddp(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather x from all ranks, shuffle, return this rank's share and the inverse order."""
        batch_size_this = x.shape[0]
        x_gather = concat_all_gather(x)
        num_ranks = x_gather.shape[0] // batch_size_this
        idx_shuffle = torch.randperm(x_gather.shape[0], device=x.device)
        if dist.is_available() and dist.is_initialized():
            dist.broadcast(idx_shuffle, src=0)  # every rank uses rank 0's permutation
        idx_unshuffle = torch.argsort(idx_shuffle)
        idx_this = idx_shuffle.view(num_ranks, -1)[_rank()]
        return x_gather[idx_this], idx_unshuffle

    @torch.no_grad()
    def _batch_unshuffle_ddp(self, x: torch.Tensor, idx_unshuffle: torch.Tensor) -> torch.Tensor:
        batch_size_this = x.shape[0]
        x_gather = concat_all_gather(x)
        num_ranks = x_gather.shape[0] // batch_size_this
        idx_this = idx_unshuffle.view(num_ranks, -1)[_rank()]
        return x_gather[idx_this]

    @torch.no_grad()
    def _keys(self, im_k: torch.Tensor) -> torch.Tensor:
        """Unit key vectors (N x dim) from the momentum encoder, in the order of im_k."""
        if self.shuffle_bn == "ddp":
            im_k, idx_unshuffle = self._batch_shuffle_ddp(im_k)
            k = nn.functional.normalize(self.encoder_k(im_k), dim=1)
            return self._batch_unshuffle_ddp(k, idx_unshuffle)
        if self.shuffle_bn == "groups":
            perm = torch.randperm(im_k.shape[0], device=im_k.device)
            k = nn.functional.normalize(self._grouped(self.encoder_k, im_k[perm]), dim=1)
            return k[torch.argsort(perm)]
        return nn.functional.normalize(self.encoder_k(im_k), dim=1)

    # -- forward --------------------------------------------------------------------------
    def forward(self, im_q: torch.Tensor, im_k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Contrast each query with its key and the queue; update the key encoder and queue.

        Args:
            im_q: (N, 3, H, W) a batch of query views.
            im_k: (N, 3, H, W) the key views of the same objects.

        Returns:
            logits (N, 1 + K) already divided by T, and labels (N,) zeros (positive at 0).
        """
        if self.shuffle_bn == "groups":
            q = self._grouped(self.encoder_q, im_q)  # queries: N x dim
        else:
            q = self.encoder_q(im_q)
        q = nn.functional.normalize(q, dim=1)

        with torch.no_grad():
            self._momentum_update_key_encoder()
            k = self._keys(im_k)  # keys: N x dim

        l_pos = torch.einsum("nc,nc->n", q, k.to(q.dtype)).unsqueeze(-1)  # N x 1
        l_neg = torch.einsum("nc,ck->nk", q, self.queue.clone().detach().to(q.dtype))  # N x K
        logits = torch.cat([l_pos, l_neg], dim=1) / self.T  # N x (1 + K)
        labels = torch.zeros(logits.shape[0], dtype=torch.long, device=logits.device)

        self._dequeue_and_enqueue(k)
        return logits, labels

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations of the query encoder: (N, D) before the head, (N, dim) after it."""
        h = features(self.encoder_q, x)
        return h, self.encoder_q.fc(h)


def _rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


@torch.no_grad()
def concat_all_gather(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate a tensor from every rank along dim 0 (no gradient); identity on one rank."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return tensor
    gathered = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, tensor.contiguous(), async_op=False)
    return torch.cat(gathered, dim=0)
