import os
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

# `make test` runs the files on two pytest-xdist workers; each takes its share of the cores, so that two workers'
# intra-op threads do not contend for the same ones (a run still equals itself bit for bit within a worker).
if os.environ.get("PYTEST_XDIST_WORKER"):
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))
