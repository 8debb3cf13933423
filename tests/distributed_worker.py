"""One process of a torchrun launch for tests/test_distributed.py: reads its rank from torchrun's environment and
runs the same steps as the spawned processes there (float64, fixed global batches)."""

import os
import sys

from test_distributed import run

if __name__ == "__main__":
    name, out = sys.argv[1], sys.argv[2]
    run(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), name, None, out)
