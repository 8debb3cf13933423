"""The one registry of what can be trained and compared: the rows of the paper's Table 1 (and eq. 1's voxel world).

Words: a *method* is one of these rows (`METHODS[name]`); its `objective` is what it pretrains with — the value of
`cfg.method.name` and the module `build_method` makes (MoCo trained with InfoNCE, or ViewCLR) — or "supervised"
(trained on the labels, nothing pretrained); the pose modality's are "skeletonclr" (MoCo over ST-GCN), "agcn"
(trained on the labels) and "fusion" (ViewCLR's scores with AGCN's); `cfg.method` holds the self-supervised
methods' settings, and a row's
`method_settings` / `model_settings` are the few it changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

POSE_OBJECTIVES = ("skeletonclr", "agcn", "fusion")  # cfg.pose's methods (studies/pose.py), not build_method's
OBJECTIVES = ("infonce", "viewclr")  # what a pretraining stage trains: cfg.method.name, build_method's kinds


@dataclass(frozen=True)
class Method:
    """A method `viewclr compare` trains and evaluates at equal budgets."""

    name: str  # as on the command line: viewclr compare --methods NAME ...
    title: str  # as in the paper's Table 1
    objective: Literal["infonce", "viewclr", "supervised", "skeletonclr", "agcn", "fusion"]
    method_settings: dict = field(default_factory=dict)  # cfg.method fields the row sets (the ablations)
    model_settings: dict = field(default_factory=dict)  # cfg.model fields (stage 2 only: stage 1 has no generator)


METHODS = {
    m.name: m
    for m in (
        Method("supervised", "Supervised from scratch", "supervised"),
        Method("infonce", "InfoNCE", "infonce"),
        # Table 1's last row removes the viewpoint generator: "the third stream only provides feature to perform
        # manifold mixup" (§4.4), i.e. fg1(x″) mixed in directly
        Method(
            "viewclr_no_adv_l3d",
            "ViewCLR − L_adv − L3D (no generator)",
            "viewclr",
            {"use_adv": False, "use_l3d": False, "use_generator": False},
        ),
        Method("viewclr_no_adv", "ViewCLR − L_adv", "viewclr", {"use_adv": False}),
        Method("viewclr_no_l3d", "ViewCLR − L3D", "viewclr", {"use_l3d": False}),
        Method("viewclr", "ViewCLR", "viewclr"),
        # eq. 1 read literally: F_W a world voxel grid, for the auto-encoder and L3D (model.world=voxels)
        Method("viewclr_voxels", "ViewCLR, voxel world (eq. 1)", "viewclr", model_settings={"world": "voxels"}),
        # the pose modality (studies/pose.py, cfg.pose): Table 1's SkeletonCLR row, the supervised 2s-AGCN joint
        # stream, and Tables 4-6's late fusion of the two modalities (needs viewclr and agcn in the same compare)
        Method("skeletonclr", "SkeletonCLR", "skeletonclr"),
        Method("agcn", "2s-AGCN joint stream (supervised)", "agcn"),
        Method("viewclr_poses", "ViewCLR + Poses", "fusion"),
    )
}
