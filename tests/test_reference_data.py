"""The vendored reference lists are the shared ones, byte for byte (where ../shared is present)."""

import gzip
from pathlib import Path

import pytest
from helpers import REFERENCE

ROOT = Path(__file__).resolve().parents[1]
SHARED = next((p for p in (ROOT.parent / "shared" / "data", ROOT / "shared" / "data") if p.is_dir()), None)


@pytest.mark.skipif(SHARED is None, reason="../shared/data is not beside this checkout (CI uses the vendored copies)")
def test_vendored_copies_equal_shared():
    vendored = sorted(REFERENCE.glob("*/*.gz"))
    assert len(vendored) == 17
    for path in vendored:
        original = SHARED / path.parent.name / path.name.removesuffix(".gz")
        assert gzip.decompress(path.read_bytes()) == original.read_bytes(), original
