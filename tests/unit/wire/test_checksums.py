"""A backup's checksum: the same for the same files as it always was (backups made before
keep theirs), and never read through a link or from a pipe: the instance's account can put
one where a backup's file should be."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path, PurePosixPath

import pytest

from trove_wire.checksums import (
    NotRegular,
    file_checksum,
    open_below,
    regular_files,
    tree_checksum,
)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A set whose names sort differently as text and as paths ('a/b' and 'a.b')."""
    root = tmp_path / "set"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a.b").mkdir()
    (root / "a" / "b" / "x").write_bytes(b"one")
    (root / "a.b" / "y").write_bytes(b"two")
    (root / "a" / "z").write_bytes(b"three")
    (root / "a b").write_bytes(b"")
    return root


def test_a_trees_checksum_is_its_files_names_and_contents_in_path_order(tree: Path) -> None:
    expected = hashlib.sha256()
    for name, content in (("a/b/x", b"one"), ("a/z", b"three"), ("a b", b""), ("a.b/y", b"two")):
        expected.update(name.encode() + b"\0" + content)
    assert tree_checksum(tree) == (11, expected.hexdigest())


def test_a_files_checksum_is_its_contents(tmp_path: Path) -> None:
    path = tmp_path / "b-1.tar.zst"
    path.write_bytes(b"backup")
    assert file_checksum(path) == (6, hashlib.sha256(b"backup").hexdigest())


def test_a_link_in_a_tree_is_never_read_through(tree: Path, tmp_path: Path) -> None:
    secret = tmp_path / "service.key"
    secret.write_text("not the tenant's")
    (tree / "a" / "z").unlink()
    (tree / "a" / "z").symlink_to(secret)
    with pytest.raises(NotRegular, match="a/z"):
        tree_checksum(tree)
    assert PurePosixPath("a/z") not in regular_files(tree, skip_links=True)


def test_a_link_for_a_directory_is_never_walked_into(tree: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret").write_text("not the tenant's")
    (tree / "a" / "linked").symlink_to(elsewhere)
    with pytest.raises(NotRegular):
        tree_checksum(tree)
    assert all("secret" not in str(p) for p in regular_files(tree, skip_links=True))
    with pytest.raises(NotRegular):
        open_below(tree, PurePosixPath("a/linked/secret"))


def test_a_tree_that_is_a_link_is_refused(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tree)
    with pytest.raises(NotRegular):
        tree_checksum(tmp_path / "link")


def test_a_file_that_is_a_link_or_a_pipe_is_refused(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("x")
    (tmp_path / "b-1.xbstream.zst").symlink_to(tmp_path / "real")
    with pytest.raises(NotRegular):
        file_checksum(tmp_path / "b-1.xbstream.zst")
    os.mkfifo(tmp_path / "b-2.xbstream.zst")
    with pytest.raises(NotRegular):  # and does not wait for a writer
        file_checksum(tmp_path / "b-2.xbstream.zst")
    (tmp_path / "set").mkdir()
    os.mkfifo(tmp_path / "set" / "pipe")
    with pytest.raises(NotRegular):
        tree_checksum(tmp_path / "set")
