"""Where bblogin keeps its files.

On Linux and the BSDs this follows the XDG base directory spec directly, with the standard
library only and without even `os` (see below): `platformdirs` costs about 1.5x a whole Python
start-up to import, and this module is on the hot path that kubectl and git spawn on every call.
On macOS and Windows it defers to platformdirs. ``BBLOGIN_CONFIG_DIR``, ``BBLOGIN_STATE_DIR`` and ``BBLOGIN_CACHE_DIR`` override
each location (tests and portable installs use them).

  config dir  config.toml (profiles, git hosts)              XDG_CONFIG_HOME/bblogin
  state dir   accounts.json (account index), locks/, plaintext/   XDG_STATE_HOME/bblogin
  cache dir   config.marshal + accounts.marshal (hot-path mirrors), discovery/JWKS   XDG_CACHE_HOME/bblogin
"""

import sys

APP = "bblogin"

# The hot path runs without `os`: importing it loads collections.abc and costs about a tenth of a
# Python start-up, more than all of bblogin's hot-path modules together. On POSIX its C core,
# `posix`, has all this module needs; once anything has imported `os` (the full path, tests),
# ``getenv`` reads os.environ, so changes made through it are seen.
if sys.platform == "win32":
    import os as _fs

    SEP = "\\"
else:
    import posix as _fs

    SEP = "/"
stat = _fs.stat


def getenv(name: str) -> str | None:
    os = sys.modules.get("os")
    if os is not None or sys.platform == "win32":
        return (os or _fs).environ.get(name)  # type: ignore[union-attr]
    value = _fs.environ.get(name.encode())  # posix.environ: bytes, as the process started
    return None if value is None else value.decode(sys.getfilesystemencoding(), "surrogateescape")


def join(*parts: str) -> str:
    """os.path.join for the few joins here: a later absolute part starts over."""
    out = ""
    for part in parts:
        out = part if (part.startswith(SEP) or not out) else out.rstrip(SEP) + SEP + part
    return out


def exists(path: str) -> bool:
    try:
        stat(path)
    except (OSError, ValueError):
        return False
    return True


def home() -> str:
    value = getenv("HOME")
    if value or sys.platform == "win32":
        return value or _fs.path.expanduser("~")  # type: ignore[attr-defined]
    import pwd

    try:
        return pwd.getpwuid(_fs.getuid()).pw_dir
    except KeyError:  # a container's uid without a passwd entry (os.path.expanduser gave "~": a relative dir)
        from bblogin._errors import ConfigError

        raise ConfigError(
            f"HOME is not set and user id {_fs.getuid()} has no home directory in the password database",
            hint="set HOME, or BBLOGIN_CONFIG_DIR, BBLOGIN_STATE_DIR and BBLOGIN_CACHE_DIR",
        ) from None


def _xdg(var: str, fallback: str) -> str:
    value = getenv(var) or ""
    if not value or not value.startswith(SEP):
        value = join(home(), fallback)
    return join(value, APP)


def _platform(kind: str) -> str:
    if sys.platform.startswith(("win", "darwin")):
        import platformdirs

        return str(getattr(platformdirs, f"user_{kind}_dir")(APP, appauthor=False))
    return _xdg(
        {"config": "XDG_CONFIG_HOME", "state": "XDG_STATE_HOME", "cache": "XDG_CACHE_HOME"}[kind],
        {"config": ".config", "state": ".local/state", "cache": ".cache"}[kind],
    )


def config_dir() -> str:
    return getenv("BBLOGIN_CONFIG_DIR") or _platform("config")


def state_dir() -> str:
    return getenv("BBLOGIN_STATE_DIR") or _platform("state")


def cache_dir() -> str:
    return getenv("BBLOGIN_CACHE_DIR") or _platform("cache")


def config_file() -> str:
    return getenv("BBLOGIN_CONFIG") or join(config_dir(), "config.toml")


def accounts_file() -> str:
    return join(state_dir(), "accounts.json")


def adhoc_profiles_file() -> str:
    """What kubeconfig flags said about each ad-hoc profile (``bblogin._adhoc``)."""
    return join(state_dir(), "adhoc-profiles.json")


def locks_dir() -> str:
    return join(state_dir(), "locks")


def plaintext_dir() -> str:
    return join(state_dir(), "plaintext")


def plaintext_file(account_id: str) -> str:
    return join(plaintext_dir(), f"{account_id}.json")


def keyring_config_file() -> str:
    """keyring's own config file, where keyring looks for it (``keyring.util.platform_.config_root``):
    ``%LOCALAPPDATA%`` (else ``%ProgramData%``) ``\\Python Keyring`` on Windows; elsewhere, macOS
    included, ``$XDG_CONFIG_HOME`` (else ``~/.config``) ``/python_keyring``."""
    if sys.platform == "win32":
        root = getenv("LOCALAPPDATA")
        root = getenv("ProgramData") if root is None else root
        return join("." if root is None else root, "Python Keyring", "keyringrc.cfg")
    return join(getenv("XDG_CONFIG_HOME") or join(home(), ".config"), "python_keyring", "keyringrc.cfg")
