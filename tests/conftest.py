"""Shared test set-up. Fixture modules live in tests/fixtures/ and are loaded as plugins."""

from __future__ import annotations

import pathlib

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (pathlib.Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)
