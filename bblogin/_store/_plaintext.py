"""Plaintext token files, only when the user asked for them (--insecure-storage / storage =
"plaintext"): ``plaintext/<account id>.json`` in the state dir, 0600 in a 0700 directory."""

from __future__ import annotations

import os

from bblogin import _files, _paths


def path(account_id: str) -> str:
    return _paths.plaintext_file(account_id)


def read_all(account_id: str) -> dict[str, str]:
    data = _files.read_json(path(account_id))
    return {k: v for k, v in data.items() if isinstance(v, str)} if isinstance(data, dict) else {}


def write_all(account_id: str, values: dict[str, str]) -> None:
    if values:
        _files.atomic_write_json(path(account_id), values)
    else:
        try:
            os.unlink(path(account_id))
        except FileNotFoundError:
            pass
