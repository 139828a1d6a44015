"""Shared test set-up. Fixture modules live in tests/fixtures/ and are loaded as plugins."""

from __future__ import annotations

import pathlib

import pytest

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (pathlib.Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)

# The declared markers (pyproject.toml) follow from the fixtures a test uses, directly or through
# another fixture: a test cannot forget its marker, and `-m "not browser"` leaves out exactly the
# tests that would start Chromium. `slow` is set by hand on the tests that take long.
MARKER_FIXTURES = {
    "keyring": "secret_service",  # gnome-keyring under a private D-Bus session
    "kubectl": "kubectl_bin",  # the real kubectl binary
    "browser": "chromium",  # Debian's chromium, driven by Playwright
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        for marker, fixture in MARKER_FIXTURES.items():
            if fixture in used:
                item.add_marker(marker)
