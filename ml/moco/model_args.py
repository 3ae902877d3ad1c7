"""The model's arguments as stored in checkpoints, and the builders that read them.

A checkpoint holds ``MoCoArgs`` as a plain dict next to the weights, so training, resume and
inference rebuild the same network from the file alone (nanoGPT's ``model_args``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from torch import nn

from ml.moco.backbone import backbone_factory
from ml.moco.builder import MoCo, make_encoder


@dataclass(frozen=True)
class MoCoArgs:
    arch: str = "resnet18"  # backbone: resnet10, resnet18, resnet34 or resnet50
    small_stem: bool = False  # 3x3 stride-1 stem without max-pool, for small crops
    width: int = 64  # channels of the first ResNet stage (torchvision: 64)
    dim: int = 128  # head output (embedding) dimension
    K: int = 65536  # queue length
    m: float = 0.999  # key encoder momentum
    T: float = 0.2  # softmax temperature
    mlp: bool = True  # MoCo v2 MLP head
    shuffle_bn: str = "groups"  # "groups", "ddp" or "none"
    bn_groups: int = 4  # BN groups for shuffle_bn="groups"

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> MoCoArgs:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model arguments {sorted(unknown)}; known: {sorted(known)}")
        return cls(**d)


def build_moco(args: MoCoArgs) -> MoCo:
    """The full training model (both encoders and the queue)."""
    return MoCo(
        backbone_factory(args.arch, small_stem=args.small_stem, width=args.width),
        dim=args.dim, K=args.K, m=args.m, T=args.T, mlp=args.mlp,
        shuffle_bn=args.shuffle_bn, bn_groups=args.bn_groups,
    )


def build_query_encoder(args: MoCoArgs) -> nn.Module:
    """The query encoder alone (backbone + head), as MoCo builds it: what inference needs."""
    return make_encoder(
        backbone_factory(args.arch, small_stem=args.small_stem, width=args.width),
        args.dim, args.mlp,
    )
