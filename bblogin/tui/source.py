"""What the TUI reads and does, behind one small interface: the real core by default, a fixed
fake in tests (deterministic snapshots, a fixed clock)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from bblogin._commands._views import describe, memberships
from bblogin._config import Config, Profile
from bblogin._errors import ProfileNotFound
from bblogin._session import issued_for, serves


class AccountSource(Protocol):
    def now(self) -> int: ...

    def profiles(self) -> list[str]: ...

    def accounts(self) -> list[dict[str, Any]]:
        """``_views.describe`` dicts, plus where each account is used (``usage_view``)."""

    def claims(self, account_id: str) -> dict[str, Any]:
        """The stored ID token's claims (verified when stored), or {}."""

    def token(self, account_id: str, kind: str) -> str | None: ...

    def use(self, account_id: str) -> None: ...

    def refresh(self, account_id: str) -> None: ...

    def logout(self, account_id: str) -> None: ...

    def login(self, profile: str, on_prompt: Callable[[Any], None], on_url: Callable[[str], None]) -> str:
        """Run a login (blocking: call from a worker thread); returns the new account's label."""


class CoreSource:
    """The real thing: config, account index, keyring, IdP."""

    def _config(self) -> Config:
        from bblogin._mirrors import load_config

        return load_config()

    def _profile_for(self, row: str) -> tuple[Profile, Any]:
        """The profile a row (:func:`row_key`) acts for, and its token set."""
        from bblogin import _index
        from bblogin._session import profile_for

        member, account_id = split_row_key(row)
        account = _index.load().get(account_id)
        return profile_for(account, self._config(), member), account

    def now(self) -> int:
        from bblogin._tokens import now

        return now()

    def profiles(self) -> list[str]:
        return sorted(self._config().profiles)

    def accounts(self) -> list[dict[str, Any]]:
        from bblogin import _index
        from bblogin.tui.usage import Use, kube_uses

        config = self._config()
        index = _index.load()
        kube = kube_uses()
        hosts = [Use(h.url, h.profile, h.account) for h in config.git_hosts]
        try:
            default: str | None = config.profile(None).name  # what `bblogin kubectl` without --profile uses
        except ProfileNotFound:
            default = None
        # each context and host with the profile `bblogin kubectl`/git would act with (flags applied)
        contexts = [(u, effective_profile(u, config)) for u in kube.contexts]
        targets = [(u, effective_profile(u, config)) for u in hosts]
        out = []
        for member, account in memberships(index):
            view = describe(account, config, index, member)
            view["id"] = row_key(member, account.id)  # a row per profile that uses the account
            configured = config.profiles.get(member)
            if configured is None:
                view["unused"] = f"its profile {member} is not in {config.path}; kubectl and git cannot ask for it"
            elif not issued_for(account, configured):
                view["unused"] = f"its profile {member} now names {configured.issuer} (client {configured.client_id}); kubectl and git do not use this login"
            elif not serves(account, configured):
                view["unused"] = f"its profile {member} now asks for other scopes or parameters; kubectl and git do not use this login until `bblogin login --profile {member}`"
            else:
                view["unused"] = None

            def reaching(uses: list[tuple[Any, Profile | None]], account: Any = account, member: str = member) -> list[Any]:
                """The uses whose effective profile may use ``account`` (``_session.serves``)."""
                return [u for u, p in uses if p is not None and p.name == member and serves(account, p)]

            view.update(usage_view(account.id, member, view["active"], default, reaching(contexts), reaching(targets), index.find, usable=not view["unused"]))
            view["kube_problems"] = kube.problems
            out.append(view)
        return sorted(out, key=lambda v: (v["profile"], v["email"] or v["sub"]))

    def claims(self, account_id: str) -> dict[str, Any]:
        from bblogin._claims import unverified_claims

        token = self.token(account_id, "id_token")
        return (unverified_claims(token) or {}) if token else {}

    def token(self, account_id: str, kind: str) -> str | None:
        from bblogin._store import SecretStore

        _profile, account = self._profile_for(account_id)
        return SecretStore(account.storage).get(account.id, kind)

    def use(self, account_id: str) -> None:
        from bblogin import _gcpfiles, _index

        member, set_id = split_row_key(account_id)
        with _index.transaction() as index:
            account = index.get(set_id)
            for name in [member] if member is not None else account.profiles:
                if name in account.profiles:
                    index.active[name] = account.id
        _gcpfiles.reconcile()  # as `bblogin use`

    def refresh(self, account_id: str) -> None:
        from bblogin._session import refresh_account

        profile, account = self._profile_for(account_id)
        refresh_account(profile, account)

    def logout(self, account_id: str) -> None:
        from bblogin import _gitconfig
        from bblogin._session import logout

        profile, account = self._profile_for(account_id)
        member = split_row_key(account_id)[0]
        leaving = [member] if member is not None else None
        logout(profile, account, leaving)
        _gitconfig.reject_account(self._config(), account, leaving)  # as `bblogin logout`: no git helper keeps its token

    def login(self, profile: str, on_prompt: Callable[[Any], None], on_url: Callable[[str], None]) -> str:
        from bblogin._login import LoginOptions
        from bblogin._session import login_now

        chosen = self._config().profile(profile)
        return login_now(chosen, LoginOptions(on_device_prompt=on_prompt, on_url=on_url)).label


def row_key(profile: str, account_id: str) -> str:
    """The TUI's id for one profile's use of one token set (an account shows once per profile)."""
    return f"{profile}\n{account_id}"


def split_row_key(row: str) -> tuple[str | None, str]:
    """(profile, token set id) of a :func:`row_key`; a bare token set id names no profile."""
    profile, _, account_id = row.rpartition("\n")
    return profile or None, account_id


def effective_profile(use: Any, config: Config) -> Profile | None:
    """The profile `bblogin kubectl --profile P [IdP flags]` (or git for a host) acts with, as
    ``_commands._common.profile_from_args`` builds it; None when it would refuse."""
    import argparse

    from bblogin._commands._common import IDP_FLAGS, profile_from_args
    from bblogin._errors import BbloginError

    args = argparse.Namespace(profile=use.profile, **{**dict.fromkeys(IDP_FLAGS), **dict(use.idp)})
    try:
        return profile_from_args(args, config, remember=False)  # looking at kubeconfigs writes nothing
    except BbloginError:
        return None


def usage_view(
    account_id: str, profile: str, active: bool, default_profile: str | None, contexts: list[Any], hosts: list[Any], find: Callable[[str, str], Any], *, usable: bool = True
) -> dict[str, Any]:
    """``kube_contexts``/``git_hosts``: where this account's identity goes now; ``follows_active``:
    the contexts and hosts of its profile that pin no account, which switching the active account
    moves. An account its profile cannot use (``usable`` False) goes nowhere and moves nothing."""
    from bblogin._errors import AccountNotFound
    from bblogin.tui.usage import serves

    def matches(query: str) -> bool:
        try:
            return bool(find(query, profile).id == account_id)
        except AccountNotFound:
            return False

    def pick(uses: list[Any], *, follow: bool = False) -> list[str]:
        if not usable:
            return []
        if follow:
            return [u.name for u in uses if not u.account and (u.profile or default_profile) == profile]
        return [u.name for u in uses if serves(u, profile, default_profile, matches, active)]

    return {
        "kube_contexts": pick(contexts),
        "git_hosts": pick(hosts),
        "follows_active": {"kube_contexts": pick(contexts, follow=True), "git_hosts": pick(hosts, follow=True)},
    }
