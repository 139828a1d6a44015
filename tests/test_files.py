from __future__ import annotations

import os
import pathlib

import pytest

from bblogin import _files
from bblogin._errors import StorageError


def test_atomic_write_private_modes(tmp_path: pathlib.Path) -> None:
    target = tmp_path / "new" / "dir" / "f.json"
    _files.atomic_write_json(str(target), {"a": 1})
    assert _files.read_json(str(target)) == {"a": 1}
    assert os.stat(target).st_mode & 0o777 == 0o600
    assert os.stat(target.parent).st_mode & 0o777 == 0o700
    assert [p.name for p in target.parent.iterdir()] == ["f.json"]


def test_loose_dir_is_tightened(tmp_path: pathlib.Path) -> None:
    d = tmp_path / "loose"
    d.mkdir(mode=0o755)
    _files.ensure_private_dir(str(d))
    assert os.stat(d).st_mode & 0o777 == 0o700


def test_read_only_dir_keeps_old_file(tmp_path: pathlib.Path) -> None:
    if os.geteuid() == 0:
        target = "/proc/bblogin-cannot-write/f.json"  # root ignores modes; /proc refuses everyone
        with pytest.raises(StorageError) as info:
            _files.atomic_write_json(target, {"b": 2})
        assert "bblogin-cannot-write" in str(info.value)
        return
    d = tmp_path / "ro"
    d.mkdir()
    _files.atomic_write_json(str(d / "f.json"), {"a": 1})
    d.chmod(0o500)
    try:
        with pytest.raises(StorageError):
            _files.atomic_write_json(str(d / "f.json"), {"b": 2})
        assert _files.read_json(str(d / "f.json")) == {"a": 1}
    finally:
        d.chmod(0o700)


def test_read_json_tolerates_garbage(tmp_path: pathlib.Path) -> None:
    (tmp_path / "g").write_bytes(b"\x00{not json")
    assert _files.read_json(str(tmp_path / "g")) is None
    assert _files.read_json(str(tmp_path / "missing")) is None
