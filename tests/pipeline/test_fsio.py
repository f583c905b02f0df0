"""Atomic writes: a crash mid-write leaves the old file whole and no temp file behind."""

from __future__ import annotations

import hashlib
import os

import pytest

from pipeline.fsio import atomic_write_bytes, atomic_write_json, sha256_file


def test_write_replaces_the_whole_file(tmp_path):
    path = tmp_path / "sub" / "model.bin"
    atomic_write_bytes(path, b"first")
    atomic_write_bytes(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.bin"]


def test_a_crash_before_the_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "model.bin"
    atomic_write_bytes(path, b"old and valid")

    def crash(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="No space left"):
        atomic_write_bytes(path, b"new but never complete")
    assert path.read_bytes() == b"old and valid"
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]


def test_json_refuses_nan_rather_than_writing_invalid_json(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        atomic_write_json(tmp_path / "r.json", {"score": float("nan")})
    assert not (tmp_path / "r.json").exists()


def test_streaming_digest_matches_hashlib(tmp_path):
    data = os.urandom(200_000)
    path = tmp_path / "blob"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
