"""MoCo v2: the contrastive model (``builder``), its ResNet backbones (``backbone``) and the
arguments stored in checkpoints (``model_args``)."""

from ml.moco.backbone import ARCHS, backbone_factory, feature_dim, features, resnet
from ml.moco.builder import MoCo, concat_all_gather, make_encoder
from ml.moco.model_args import MoCoArgs, build_moco, build_query_encoder

__all__ = [
    "ARCHS",
    "MoCo",
    "MoCoArgs",
    "backbone_factory",
    "build_moco",
    "build_query_encoder",
    "concat_all_gather",
    "feature_dim",
    "features",
    "make_encoder",
    "resnet",
]
