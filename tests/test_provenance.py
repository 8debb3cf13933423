"""Which code produced a result: the source digest, the git commit, and the warning on a mix."""

import logging
import shutil
import subprocess

import pytest

from viewclr import provenance


def test_the_source_digest_follows_the_code_files_and_only_them(tmp_path):
    (tmp_path / "pkg" / "sub").mkdir(parents=True)
    (tmp_path / "pkg" / "a.py").write_text("x = 1\n")
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("k: 2\n")
    first = provenance.source_digest(tmp_path / "pkg")
    assert len(first) == 16 and provenance.source_digest(tmp_path / "pkg") == first
    (tmp_path / "pkg" / "notes.md").write_text("not code")
    (tmp_path / "pkg" / "a.cpython-311.pyc").write_bytes(b"\0")
    assert provenance.source_digest(tmp_path / "pkg") == first  # neither a .py nor a .yaml
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("k: 3\n")
    assert provenance.source_digest(tmp_path / "pkg") != first
    (tmp_path / "pkg" / "sub" / "b.yaml").write_text("k: 2\n")
    (tmp_path / "pkg" / "sub" / "b.yaml").rename(tmp_path / "pkg" / "b.yaml")  # the same bytes elsewhere
    assert provenance.source_digest(tmp_path / "pkg") != first


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_git_state_is_the_commit_and_whether_the_files_differ_from_it(tmp_path):
    assert provenance.git_state(tmp_path) == (None, None)  # not a checkout
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    (tmp_path / "a.py").write_text("x = 1\n")
    subprocess.run([*git, "add", "a.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "one"], check=True)
    head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    assert provenance.git_state(tmp_path) == (head, False)
    (tmp_path / "a.py").write_text("x = 2\n")
    assert provenance.git_state(tmp_path) == (head, True)


def test_a_source_edited_while_the_process_runs_is_recorded_and_logged(monkeypatch, caplog):
    start = provenance.at_start()
    assert start["source"] == provenance.source_digest() and start["version"]
    assert provenance.record() == {**start, "source_changed": False}
    monkeypatch.setattr(provenance, "source_digest", lambda root=provenance.PACKAGE: "edited0000000000")
    with caplog.at_level(logging.WARNING, logger="viewclr.provenance"):
        assert provenance.record()["source_changed"]
    assert "changed while this process ran" in caplog.text


def test_mixed_names_what_mixes():
    a, b = {"source": "aaaa", "source_changed": False}, {"source": "bbbb", "source_changed": False}
    assert provenance.mixed({"x": a, "y": dict(a)}) is None
    assert provenance.mixed({"x": None, "y": None}) is None  # all from before versions were recorded: no claim
    assert "2 versions of the code (aaaa, bbbb)" in provenance.mixed({"x": a, "y": b})
    assert "1 result(s) from code that recorded no version (e.g. y)" in provenance.mixed({"x": a, "y": None})
    assert "a source edited while it ran (y)" in provenance.mixed({"x": a, "y": {**a, "source_changed": True}})
