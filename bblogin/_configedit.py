"""Edits to config.toml, this module's one job: add or replace a profile or a git host with tomlkit,
keeping the rest of the file (comments, order), checked against ``_config``'s validation before
anything is written, atomically and under the config lock; then the hot path's mirror is compiled
from the file as written (``_mirrors``). Parsing and validation are ``_config``'s."""

from __future__ import annotations

from bblogin import _files, _lock, _mirrors, _paths
from bblogin._config import GitHost, Profile, _Validator, default_scopes, load, normalize_git_url, parse
from bblogin._errors import ConfigError
from bblogin._record import asdict, fields

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from typing import Any


def _profile_table(profile: Profile) -> dict[str, Any]:
    """The keys that differ from what loading would default to (the provider's own scopes too)."""
    defaults = Profile(name="", issuer="", client_id="", scopes=default_scopes(profile.provider))
    out: dict[str, Any] = {}
    for f in fields(Profile):
        if f.name == "name":
            continue
        value = getattr(profile, f.name)
        if f.name in ("issuer", "client_id") or value != getattr(defaults, f.name):
            out[f.name] = list(value) if isinstance(value, tuple) else value
    return out


def _edit(path: str | None, mutate: Any) -> None:
    """Apply ``mutate(doc)`` to config.toml with tomlkit (comments and order kept), atomically,
    under the config lock; then compile the hot path's mirror from the file as written."""
    import tomlkit

    path = path or _paths.config_file()
    with _lock.account_lock(_mirrors.CONFIG_LOCK, _mirrors.EDIT_LOCK_TIMEOUT):
        try:
            with open(path, encoding="utf-8") as fh:
                doc = tomlkit.parse(fh.read())
        except FileNotFoundError:
            doc = tomlkit.document()
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot update {path}: {exc}") from exc
        mutate(doc, tomlkit)
        text = tomlkit.dumps(doc).rstrip("\n") + "\n"  # a removed table leaves no blank line behind
        try:
            parse(path, text)  # never write a file that every later command would refuse
        except ConfigError as exc:
            raise ConfigError(f"not saved (config.toml would be invalid): {exc.message}", hint="nothing was written; fix the value on the command line") from None
        _files.atomic_write_bytes(path, text.encode())
        _mirrors.compile_config(load(path))


def profile_problem(profile: Profile) -> str | None:
    """Why config.toml would refuse ``profile`` as ``save_profile`` writes it, or None: checked
    before a login, so flags the file cannot hold never cost a login (nor break the file)."""
    try:
        _Validator("", "").profile(profile.name, _profile_table(profile))
    except ConfigError as exc:
        return exc.message.lstrip(": ")
    return None


def save_profile(profile: Profile, *, make_default: bool = False, path: str | None = None) -> None:
    """Add or replace ``[profiles.NAME]``, keeping the rest of the file (comments included)."""

    def mutate(doc: Any, tomlkit: Any) -> None:
        if make_default or "default_profile" not in doc:
            doc["default_profile"] = profile.name
        table = tomlkit.table()
        for key, value in _profile_table(profile).items():
            table[key] = value
        doc.setdefault("profiles", tomlkit.table(is_super_table=True))[profile.name] = table

    _edit(path, mutate)


def _git_keys(doc: Any, url: str) -> list[str]:
    """The ``[git."…"]`` keys that name ``url`` (written before keys were normalised, too)."""
    return [key for key in doc.get("git", {}) if normalize_git_url(key) == url]


def save_git_host(host: GitHost, *, path: str | None = None) -> None:
    """Add or replace ``[git."URL"]`` (URL normalised; other spellings of it are replaced too),
    keeping the rest of the file."""
    defaults = GitHost(url="", profile="")

    def mutate(doc: Any, tomlkit: Any) -> None:
        table = tomlkit.table()
        for key, value in asdict(host).items():
            if key == "profile" or (key not in ("url", "problem") and value is not None and value != getattr(defaults, key)):
                table[key] = value
        git = doc.setdefault("git", tomlkit.table(is_super_table=True))
        for key in _git_keys(doc, host.url):
            if key != host.url:
                del git[key]
        git[host.url] = table

    _edit(path, mutate)


def remove_git_host(url: str, *, path: str | None = None) -> list[str]:
    """Remove ``[git."URL"]`` (every spelling of the normalised ``url``); the keys removed."""
    removed: list[str] = []

    def mutate(doc: Any, tomlkit: Any) -> None:
        removed[:] = _git_keys(doc, url)
        for key in removed:
            del doc["git"][key]
        if "git" in doc and not doc["git"]:
            del doc["git"]

    _edit(path, mutate)
    return removed
