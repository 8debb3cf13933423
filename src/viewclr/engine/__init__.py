"""Training: the loop, AMP, DDP, checkpoints and resume, logging."""
