"""Networks: the S3D encoder, heads, the Neural Projection Layer and ViewCLR's viewpoint generator."""

from viewclr.models.heads import ClassifierHead, ProjectionHead, reverse_gradient
from viewclr.models.npl import NeuralProjection, rotation_angle, rotation_from_6d, splat
from viewclr.models.registry import BACKBONES, build_backbone, register, split_shape
from viewclr.models.s3d import S3D
from viewclr.models.viewpoint import GeneratorOutput, ViewpointGenerator, WorldAutoEncoder

__all__ = [
    "BACKBONES",
    "S3D",
    "ClassifierHead",
    "GeneratorOutput",
    "NeuralProjection",
    "ProjectionHead",
    "ViewpointGenerator",
    "WorldAutoEncoder",
    "build_backbone",
    "register",
    "reverse_gradient",
    "rotation_angle",
    "rotation_from_6d",
    "split_shape",
    "splat",
]
