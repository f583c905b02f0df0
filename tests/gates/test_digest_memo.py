"""The digest memo: unchanged files are not read again, and nothing else is ever taken from it."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

from gates import cache as gate_cache
from gates.cache import DigestMemo, tree_digest


@pytest.fixture(autouse=True)
def _no_hmac_key(monkeypatch):
    monkeypatch.delenv(gate_cache.HMAC_KEY_ENV, raising=False)


@pytest.fixture
def settled(monkeypatch):
    """Remember digests of files written a moment ago (the tests cannot wait two seconds)."""
    monkeypatch.setattr(DigestMemo, "settle_ns", -(10**12))


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plant(store: Path, path: Path, digest: str, *, seal=None) -> None:
    """A store holding ``digest`` for ``path`` under its current stat, as an earlier process would."""
    st = path.stat()
    body = {
        "format": gate_cache.MEMO_FORMAT,
        "entries": {
            str(path.resolve()): [
                st.st_dev,
                st.st_ino,
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
                digest,
            ]
        },
    }
    document = {"body": body, "seal": seal if seal is not None else gate_cache._seal(body)}
    store.write_text(json.dumps(document), encoding="utf-8")


def test_an_unchanged_file_is_taken_from_the_store_without_reading_it(tmp_path):
    target = tmp_path / "a.txt"
    target.write_bytes(b"real")
    store = tmp_path / "memo"
    # A digest that is not the file's: only a memo that did not read the file returns it.
    plant(store, target, "f" * 64)
    assert DigestMemo(store).sha256(target) == "f" * 64
    # The run's own inputs never take a digest from another process.
    assert DigestMemo(store).sha256(target, stored=False) == sha(b"real")


def test_a_rewrite_with_size_and_mtime_put_back_is_read_again(tmp_path):
    target = tmp_path / "a.txt"
    target.write_bytes(b"good")
    before = target.stat()
    store = tmp_path / "memo"
    plant(store, target, sha(b"good"))
    time.sleep(0.05)  # past a coarse (jiffy) ctime tick on older kernels
    target.write_bytes(b"evil")  # same size
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))  # touch -r: mtime restored
    assert target.stat().st_mtime_ns == before.st_mtime_ns
    assert target.stat().st_ctime_ns != before.st_ctime_ns
    # ctime moved (no user can set it back), so the file is hashed again.
    assert DigestMemo(store).sha256(target) == sha(b"evil")


def test_a_store_whose_seal_does_not_check_out_is_ignored_whole(tmp_path, monkeypatch):
    target = tmp_path / "a.txt"
    target.write_bytes(b"real")
    store = tmp_path / "memo"
    plant(store, target, "f" * 64, seal={"alg": "sha256", "digest": "0" * 64})
    assert DigestMemo(store).sha256(target) == sha(b"real")
    # With a cache secret configured the store is not read at all, even one sealed with that
    # secret: stat cannot see every change (mmap writes, cached NFS attributes), and such a
    # cache is meant to be authenticated.
    monkeypatch.setenv(gate_cache.HMAC_KEY_ENV, "s3cret")
    plant(store, target, "f" * 64)
    assert json.loads(store.read_text())["seal"]["alg"] == "hmac-sha256"
    memo = DigestMemo(store)
    assert memo.sha256(target) == sha(b"real")
    memo.save()
    assert json.loads(store.read_text())["body"]["entries"][str(target.resolve())][-1] == "f" * 64


def test_unparsable_or_foreign_stores_are_ignored(tmp_path):
    target = tmp_path / "a.txt"
    target.write_bytes(b"real")
    store = tmp_path / "memo"
    for text in ("not json", "[]", '{"body": {"format": 99, "entries": {}}, "seal": {}}'):
        store.write_text(text, encoding="utf-8")
        assert DigestMemo(store).sha256(target) == sha(b"real")


def test_a_file_changed_in_the_last_moments_is_hashed_but_not_remembered(tmp_path):
    target = tmp_path / "a.txt"
    target.write_bytes(b"new")
    store = tmp_path / "memo"
    memo = DigestMemo(store)
    assert memo.sha256(target) == sha(b"new")
    # Changed less than two seconds ago: it could change again within one timestamp tick.
    assert not memo.dirty
    memo.save()
    assert not store.exists()


def test_saved_digests_serve_the_next_process_and_deleted_files_are_forgotten(tmp_path, settled):
    keep, gone = tmp_path / "keep.txt", tmp_path / "gone.txt"
    keep.write_bytes(b"k")
    gone.write_bytes(b"g")
    store = tmp_path / "memo"
    memo = DigestMemo(store)
    memo.sha256(keep)
    memo.sha256(gone)
    assert memo.dirty
    memo.save()
    assert not memo.dirty
    gone.unlink()
    memo.sha256(keep)  # nothing new learned: the store is not rewritten
    entries = json.loads(store.read_text(encoding="utf-8"))["body"]["entries"]
    assert set(entries) == {str(keep.resolve()), str(gone.resolve())}
    second = DigestMemo(store)
    (tmp_path / "new.txt").write_bytes(b"n")
    second.sha256(tmp_path / "new.txt")
    second.save()
    entries = json.loads(store.read_text(encoding="utf-8"))["body"]["entries"]
    assert set(entries) == {str(keep.resolve()), str((tmp_path / "new.txt").resolve())}


def test_tree_digests_through_the_memo_equal_fresh_ones(tmp_path, settled):
    root = tmp_path / "project"
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__pycache__").mkdir()
    (root / "pkg" / "a.py").write_text("a = 1\n")
    (root / "pkg" / "sub" / "b.ipynb").write_text("{}\n")
    (root / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\0")
    (root / "pkg" / "link.py").symlink_to(root / "pkg" / "a.py")
    (root / "ruff.toml").write_text("line-length = 100\n")
    scope = ["pkg", "ruff.toml", "missing.toml"]
    memo = DigestMemo(tmp_path / "memo")
    fresh = tree_digest(root, scope)
    assert tree_digest(root, scope, memo.sha256) == fresh
    assert tree_digest(root, scope, memo.sha256) == fresh  # now from the memo
    (root / "pkg" / "sub" / "b.ipynb").write_text("{ }\n")
    assert tree_digest(root, scope, memo.sha256) != fresh
    # Compiled caches are not in any scanner's scope.
    (root / "pkg" / "__pycache__" / "a.pyc").write_bytes(b"\1")
    assert tree_digest(root, scope, memo.sha256) == tree_digest(root, scope)


def test_a_tree_digest_names_files_inside_the_project_relative_to_it(tmp_path):
    # A project checked out or copied elsewhere keeps its keys (gates name what they read by
    # absolute path); a byte changed, a file outside the project or one moved still count.
    for where in ("one", "two"):
        root = tmp_path / where / "project"
        (root / "registry").mkdir(parents=True)
        (root / "registry" / "champion.json").write_text("{}\n")
        (root / "requirements.lock").write_text("x==1\n")
    outside = tmp_path / "snapshot.json"
    outside.write_text("[]\n")
    one, two = tmp_path / "one" / "project", tmp_path / "two" / "project"

    def scope(root):
        return [root / "requirements.lock", root / "registry", outside, "missing.toml"]

    assert tree_digest(one, scope(one)) == tree_digest(two, scope(two))
    assert tree_digest(one, scope(one)) == tree_digest(
        one, ["requirements.lock", "registry", outside, "missing.toml"]
    )
    (two / "registry" / "champion.json").write_text("{ }\n")
    assert tree_digest(one, scope(one)) != tree_digest(two, scope(two))
    (two / "registry" / "champion.json").write_text("{}\n")
    before = tree_digest(one, scope(one))
    outside.write_text("[ ]\n")
    assert tree_digest(one, scope(one)) != before
    # A file named from outside the project is still named by its own path.
    (tmp_path / "one" / "lock").write_text("x==1\n")
    assert tree_digest(one, [tmp_path / "one" / "lock"]) != tree_digest(one, ["lock"])


def test_a_tree_digest_sees_code_an_import_reaches_but_scans_skip(tmp_path):
    # The sast gate fails on a module in __pycache__ and on a symlinked package folder
    # (SAST006); a cached PASS must not be reused once either appears (red team).
    root = tmp_path / "p"
    (root / "src" / "__pycache__").mkdir(parents=True)
    (root / "src" / "app.py").write_text("A = 1\n")
    (root / "elsewhere").mkdir()
    before = tree_digest(root, ["src"])
    (root / "src" / "__pycache__" / "app.cpython-311.pyc").write_bytes(b"\x00")
    assert tree_digest(root, ["src"]) == before  # bytecode Python writes is not a source
    (root / "src" / "__pycache__" / "util.py").write_text("import joblib\n")
    with_module = tree_digest(root, ["src"])
    assert with_module != before
    (root / "src" / "ext").symlink_to("../elsewhere", target_is_directory=True)
    assert tree_digest(root, ["src"]) not in (before, with_module)
