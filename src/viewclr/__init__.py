"""ViewCLR: self-supervised video representation learning that generalises to unseen camera viewpoints."""

__version__ = "0.1.0"
