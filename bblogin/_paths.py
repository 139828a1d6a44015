"""Where bblogin keeps its files.

On Linux and the BSDs this follows the XDG base directory spec directly, with the standard
library only: `platformdirs` costs about 1.5x a whole Python start-up to import, and this module
is on the hot path that kubectl and git spawn on every call. On macOS and Windows it defers to
platformdirs. ``BBLOGIN_CONFIG_DIR``, ``BBLOGIN_STATE_DIR`` and ``BBLOGIN_CACHE_DIR`` override
each location (tests and portable installs use them).

  config dir  config.toml (profiles, git hosts)              XDG_CONFIG_HOME/bblogin
  state dir   accounts.json (account index), locks/, plaintext/   XDG_STATE_HOME/bblogin
  cache dir   config.marshal + accounts.marshal (hot-path mirrors), discovery/JWKS   XDG_CACHE_HOME/bblogin
"""

import os
import sys

APP = "bblogin"


def _xdg(var: str, fallback: str) -> str:
    value = os.environ.get(var, "")
    if not value or not os.path.isabs(value):
        value = os.path.join(os.path.expanduser("~"), fallback)
    return os.path.join(value, APP)


def _platform(kind: str) -> str:
    if sys.platform.startswith(("win", "darwin")):
        import platformdirs

        return str(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))
    return _xdg(
        {"config": "XDG_CONFIG_HOME", "state": "XDG_STATE_HOME", "cache": "XDG_CACHE_HOME"}[kind],
        {"config": ".config", "state": ".local/state", "cache": ".cache"}[kind],
    )


def config_dir() -> str:
    return os.environ.get("BBLOGIN_CONFIG_DIR") or _platform("config")


def state_dir() -> str:
    return os.environ.get("BBLOGIN_STATE_DIR") or _platform("state")


def cache_dir() -> str:
    return os.environ.get("BBLOGIN_CACHE_DIR") or _platform("cache")


def config_file() -> str:
    return os.environ.get("BBLOGIN_CONFIG") or os.path.join(config_dir(), "config.toml")


def accounts_file() -> str:
    return os.path.join(state_dir(), "accounts.json")


def locks_dir() -> str:
    return os.path.join(state_dir(), "locks")


def plaintext_dir() -> str:
    return os.path.join(state_dir(), "plaintext")


def plaintext_file(account_id: str) -> str:
    return os.path.join(plaintext_dir(), f"{account_id}.json")
