"""What the commands share: config loading, profile and account resolution from flags."""

from __future__ import annotations

import sys

from bblogin import _adhoc, _config, _configedit, _index, _mirrors, _record
from bblogin._config import Config, Profile
from bblogin._errors import UsageError
from bblogin._hot._answer import adhoc_profile_name
from bblogin._index import Account

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    import argparse
    from typing import Any


def load_config(*, compile: bool = True) -> Config:
    """config.toml, parsed and validated. ``compile`` also refreshes the hot path's mirror of it;
    the read-only commands (status, accounts, profiles) pass False: they write no file at all.
    The ad-hoc profiles kubeconfig flags described (``_adhoc``) come along, so ``--profile
    adhoc-…`` names one."""
    config = _mirrors.load_config() if compile else _config.load(cache=False)
    return _record.replace(config, adhoc=_adhoc.load(mirror=compile))


# the flags that describe or override a profile's identity provider (tui.usage reads them from kubeconfigs too)
IDP_FLAGS = ("issuer", "client_id", "client_secret", "provider", "connector_id", "scopes", "ca_file")


def profile_from_args(args: argparse.Namespace, config: Config, *, saving: bool = False, remember: bool = True) -> Profile:
    """The profile named by --profile, updated by any IdP flags; or an ad-hoc one from the flags.

    An ad-hoc profile (``_adhoc``) is named by its request's shape, and so is a named profile
    whose flags change what it asks for (``--profile work --scope groups``) unless ``saving``
    (``login`` writes the flags into config.toml's profile): its hint then logs in exactly that
    request, and config.toml's ``work`` keeps its own. ``remember``: record an ad-hoc profile,
    so ``--profile adhoc-…`` names it everywhere (doctor, which writes nothing, passes False)."""
    given = {k: getattr(args, k, None) for k in IDP_FLAGS}
    flags: dict[str, Any] = {k: (tuple(v) if k == "scopes" else v) for k, v in given.items() if v}
    storage = "plaintext" if getattr(args, "insecure_storage", False) else None
    name = getattr(args, "profile", None)
    if not flags:
        profile = config.profile(name)
        return _record.replace(profile, storage=storage) if storage else profile
    base = (config.profiles.get(name) or config.adhoc.get(name)) if name else None
    adhoc = base is None and not name
    if base is None:
        if not (flags.get("issuer") or flags.get("provider") == "bitbucket-cloud") or not flags.get("client_id"):
            raise UsageError("a new profile needs --issuer URL and --client-id ID", hint="or name an existing profile with --profile")
        issuer = flags.get("issuer") or _config.BITBUCKET_CLOUD_URL
        base = Profile(name=name or "adhoc", issuer=issuer, client_id=flags["client_id"])
        if flags.get("provider") and "scopes" not in flags:
            base = _record.replace(base, provider=flags["provider"], scopes=_config.default_scopes(flags["provider"]))
    party = ("provider", "issuer", "client_id")  # _session.issued_for's
    if any(flags.get(k, getattr(base, k)) != getattr(base, k) for k in party):
        flags.setdefault("client_secret", None)  # the base profile's secret belongs to its own client at its own IdP
    profile = _record.replace(base, **flags)
    if not _config.is_allowed_issuer(profile.issuer):
        raise UsageError(f"--issuer {profile.issuer}: must be https:// (http:// only for 127.0.0.1/localhost)")
    if name and not saving and not adhoc and profile.shape != base.shape:
        if base.pipelines or base.exchange_connector_id:
            raise UsageError(f"these flags change what CI profile {name} asks for", hint=f"write a profile of its own for that request in config.toml, or drop the flags: {name} is used as it is")
        adhoc = True  # another request than the named profile's: the ad-hoc profile of that request
    if adhoc:
        profile = Profile(name=adhoc_profile_name(profile.shape), **{k: getattr(profile, k) for k in _adhoc.FIELDS})
    if storage:
        profile = _record.replace(profile, storage=storage)
    problem = _configedit.profile_problem(profile)
    if problem:
        raise UsageError(f"the flags make a profile config.toml cannot hold ({problem})", hint="fix that flag (one --scope per scope name); nothing was changed")
    if adhoc and remember and not _adhoc.recorded(config.adhoc, profile):
        _adhoc.remember(profile)  # so `--profile adhoc-…` (the name hints print) works everywhere
    return profile


def save_profile_from_args(args: argparse.Namespace, profile: Profile) -> None:
    """Write what --profile NAME and IdP flags described to config.toml (comments kept): called
    after a successful login, so a refused or abandoned one leaves the file as it was."""
    if getattr(args, "profile", None) and any(getattr(args, k, None) for k in IDP_FLAGS):
        _configedit.save_profile(profile, make_default=bool(getattr(args, "default", False)))


def account_from_args(args: argparse.Namespace, profile: Profile) -> Account | None:
    """The account named by --account within the profile, or None for the active one."""
    query = getattr(args, "account", None)
    return _index.load().find(query, profile.name) if query else None


def say(message: str) -> None:
    """A message for the person: always stderr, so stdout stays clean for kubectl, git and scripts."""
    print(message, file=sys.stderr)
