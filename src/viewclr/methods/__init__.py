"""Self-supervised methods: MoCo (stage 1, and the InfoNCE baseline) and ViewCLR (stage 2), their losses and queues."""

from viewclr.methods.moco import Encoder, MoCo
from viewclr.methods.queue import FeatureQueue
from viewclr.methods.viewclr import ViewCLR

__all__ = ["Encoder", "FeatureQueue", "MoCo", "ViewCLR"]
