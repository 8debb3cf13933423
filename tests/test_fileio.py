import json

import pytest
import torch

from viewclr.fileio import atomic_path, save_torch, write_bytes, write_json, write_text


def test_a_failed_write_leaves_the_old_file_and_no_partial(tmp_path):
    target = tmp_path / "results.json"
    write_json(target, {"top1": 0.5})
    with pytest.raises(RuntimeError, match="interrupted"), atomic_path(target) as partial:
        partial.write_text('{"top1": 0.')  # half written when the run dies
        raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"top1": 0.5}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]


def test_a_finished_write_replaces_the_file_and_creates_its_folder(tmp_path):
    target = tmp_path / "a" / "b" / "notes.txt"
    write_text(target, "first")
    write_text(target, "second")
    assert target.read_text() == "second"
    write_bytes(target, b"\x00\x01", fsync=True)
    assert target.read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in target.parent.iterdir()) == ["notes.txt"]


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "frames"
    target.mkdir()
    (target / "stale.jpg").write_bytes(b"old")
    with atomic_path(target) as partial:
        partial.mkdir()
        (partial / "frame_001.jpg").write_bytes(b"new")
    assert sorted(p.name for p in target.iterdir()) == ["frame_001.jpg"]
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as partial:
        partial.mkdir()
        (partial / "frame_001.jpg").write_bytes(b"half")
        raise KeyboardInterrupt
    assert (target / "frame_001.jpg").read_bytes() == b"new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


def test_a_leftover_partial_from_a_killed_run_is_overwritten(tmp_path):
    target = tmp_path / "final.pt"
    (tmp_path / "final.pt.part").write_bytes(b"truncated by SIGKILL")
    save_torch(target, {"w": torch.arange(3)})
    assert torch.equal(torch.load(target)["w"], torch.arange(3))
    assert not (tmp_path / "final.pt.part").exists()
