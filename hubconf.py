"""torch.hub entry points: `torch.hub.load("<this repository>", "encoder", path="final.pt", source="local")`
(or `"owner/viewclr"` from GitHub) returns the encoder a weights file holds, as `viewclr.load_encoder` does."""

dependencies = ["torch", "omegaconf", "yaml"]


def encoder(path: str):
    """The S3D encoder of a viewclr final.pt, probe/finetune result or plain state dict, in eval mode; its `.record`
    says which input (frames or residual frames) and normalisation it expects."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent / "src"))  # a checkout that is not installed
    from viewclr import load_encoder

    return load_encoder(path)
