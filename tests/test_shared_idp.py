"""Several profiles at one IdP (issue #22 §1): a token set per request shape, membership per profile.

Real CLI processes (hot path and full path), the dev IdP (its ID tokens carry ``groups`` only when
asked for), the real Secret Service. ``work`` asks for groups, ``slim`` does not; ``staging`` asks
for exactly what ``work`` asks for (one profile per cluster). A version 1 ``accounts.json``,
written byte for byte as bblogin 0.x wrote it, is migrated without a new login.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bblogin import _index, _paths
from bblogin._claims import unverified_claims
from tests.test_session import bblogin, login

pytestmark = pytest.mark.usefixtures("keyring_secret_service")

EXEC_INFO = '{"apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}'
WITH_GROUPS = ("openid", "email", "groups", "offline_access")
WITHOUT_GROUPS = ("openid", "email", "offline_access")


def scopes(*names: str) -> list[str]:
    return [arg for name in names for arg in ("--scope", name)]


def kubectl(profile: str, *, hot: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
    if not hot:
        env["BBLOGIN_NO_FAST_PATH"] = "1"
    return subprocess.run([sys.executable, "-m", "bblogin", "kubectl", "--profile", profile], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)


def served_claims(profile: str) -> dict:
    """The ID token kubectl gets for ``profile`` — from the full path and the hot path, which must agree."""
    full, hot = kubectl(profile, hot=False), kubectl(profile)
    assert full.returncode == 0, full.stderr
    assert hot.returncode == 0 and hot.stdout == full.stdout, (hot.stdout, full.stdout, hot.stderr)
    return unverified_claims(json.loads(full.stdout)["status"]["token"]) or {}


def test_profiles_asking_for_other_scopes_keep_their_own_tokens(devidp) -> None:
    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "slim", *scopes(*WITHOUT_GROUPS))
    assert "groups" in served_claims("work"), "work was served slim's token, without the groups claim it asks for"
    assert "groups" not in served_claims("slim")
    listing = json.loads(bblogin("accounts", "--json").stdout)["accounts"]
    assert sorted(a["profile"] for a in listing) == ["slim", "work"] and all(a["active"] for a in listing)
    assert len({a["id"] for a in listing}) == 1 and len({a["token_set"] for a in listing}) == 2  # one account, two token sets
    work = bblogin("status", "--profile", "work").stdout
    assert work.startswith("work: alice@") and "slim" not in work
    everything = bblogin("status").stdout
    assert everything.count("alice@") == 2 and everything.index("slim: alice@") < everything.index("work: alice@")
    assert len(everything.split("identity provider")) == 3  # one block per profile, none twice


def test_logging_out_of_one_profile_leaves_a_profile_that_shares_its_tokens_working(devidp) -> None:
    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "staging", *scopes(*reversed(WITH_GROUPS)))  # the same request: scope order does not matter
    (shared,) = _index.load().accounts.values()
    assert sorted(shared.profiles) == ["staging", "work"]
    assert "same tokens as     staging" in bblogin("status", "--profile", "work").stdout
    done = bblogin("logout", "--profile", "staging")
    assert done.returncode == 0 and "work uses the same tokens and stays logged in" in done.stderr, done.stderr
    assert "groups" in served_claims("work")
    gone = kubectl("staging")
    assert gone.returncode == 4 and "bblogin login --profile staging" in gone.stderr, gone.stderr
    assert bblogin("status", "--profile", "staging").stdout.startswith("Not logged in")
    done = bblogin("logout", "--profile", "work")  # the last member: now the tokens go
    assert done.returncode == 0 and _index.load().accounts == {}, done.stderr


def test_the_tui_shows_a_shared_login_once_per_profile_and_logs_out_one_row(devidp) -> None:
    from bblogin.tui.source import CoreSource

    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "staging", *scopes(*WITH_GROUPS))
    rows = {v["profile"]: v for v in CoreSource().accounts()}
    assert set(rows) == {"work", "staging"} and rows["work"]["id"] != rows["staging"]["id"] and rows["work"]["token_set"] == rows["staging"]["token_set"]
    assert rows["work"]["shared_with"] == ["staging"] and not rows["work"]["unused"]
    listing = bblogin("accounts").stdout
    assert "(same tokens as staging)" in listing and "(same tokens as work)" in listing
    CoreSource().logout(rows["staging"]["id"])
    assert [v["profile"] for v in CoreSource().accounts()] == ["work"]
    assert "groups" in served_claims("work")


def test_use_and_logout_of_an_account_name_a_profile_or_all_of_them(devidp) -> None:
    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "slim", *scopes(*WITHOUT_GROUPS))
    devidp.default_user = "bob"
    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "slim", *scopes(*WITHOUT_GROUPS))
    done = bblogin("use", "alice@example.com", "--profile", "work")
    assert done.returncode == 0 and "active account of profile work." in done.stderr, done.stderr
    assert served_claims("work")["email"].startswith("alice@") and served_claims("slim")["email"].startswith("bob@")
    done = bblogin("use", "alice@example.com")
    assert done.returncode == 0 and "profiles slim, work" in done.stderr, done.stderr
    assert served_claims("slim")["email"].startswith("alice@")
    done = bblogin("logout", "alice@example.com")  # out of every profile
    assert done.returncode == 0, done.stderr
    assert {a.email for a in _index.load().accounts.values()} == {"bob@example.com"}
    assert served_claims("work")["email"].startswith("bob@") and served_claims("slim")["email"].startswith("bob@")


def test_a_profile_whose_scopes_change_is_not_served_the_old_tokens(devidp, monkeypatch: pytest.MonkeyPatch) -> None:
    from bblogin import _record

    from bblogin import _config, _configedit

    login(devidp, "work", *scopes(*WITHOUT_GROUPS))
    config = _config.load()
    _configedit.save_profile(_record.replace(config.profiles["work"], scopes=WITH_GROUPS))
    for hot in (True, False):
        done = kubectl("work", hot=hot)
        assert done.returncode == 4 and "bblogin login --profile work" in done.stderr, done.stderr
    assert "asks for other scopes" in bblogin("status", "--profile", "work").stdout
    login(devidp, "work", *scopes(*WITH_GROUPS))
    assert "groups" in served_claims("work")
    assert len(_index.load().accounts) == 1, "the set of the old shape, used by no profile now, stayed behind"
    from bblogin._hot import _answer

    monkeypatch.setenv("KUBERNETES_EXEC_INFO", EXEC_INFO)
    assert _answer.kubectl(["--profile", "work"]) is not None
    assert _answer.kubectl(["--profile", "work", "--connector-id", "other"]) is None  # another request: the full path judges it


V1_CONFIG = """\
default_profile = "work"

[profiles.work]
issuer = "{issuer}"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
scopes = ["openid", "email", "groups", "offline_access"]

[profiles.staging]
issuer = "{issuer}"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
scopes = ["groups", "openid", "offline_access", "email"]

[profiles.slim]
issuer = "{issuer}"
client_id = "bblogin"
connector_id = "bitbucket-cloud"
scopes = ["openid", "email", "offline_access"]
"""


# the fields of bblogin 0.x's _index.Account (accounts.json version 1), as asdict() wrote them
# (the last version 1 writer added "outage", issue #24)
V1_FIELDS = {
    "id", "profile", "provider", "issuer", "client_id", "sub", "email", "name", "username", "groups", "storage",
    "tokens", "refresh_dead", "updated_at", "subject_sha256", "clock", "outage",
}


def grants(idp) -> int:  # type: ignore[no-untyped-def]
    """Token requests that were logins (not refreshes)."""
    return sum(1 for _method, path, grant in idp.requests if path == "/token" and grant != "refresh_token")


def write_v1_index(owner: str, active: list[str]) -> str:
    """Turn the index the current login wrote into the version 1 file bblogin 0.x wrote for the
    same login (one record per account, its ``profile`` the one that logged in last; the keyring
    entries under the account id), with ``active`` pointing at it for each of ``active``."""
    (record,) = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())["accounts"].values()
    from bblogin._store import SecretStore

    store = SecretStore("keyring")
    identity = record["identity"]
    for kind in record["tokens"]:
        store.set(identity, kind, store.get(record["id"], kind) or "")
    store.delete_account(record["id"])
    old = {k: v for k, v in record.items() if k not in ("profiles", "shape", "identity")}
    old.update(id=identity, profile=owner)
    assert set(old) == V1_FIELDS, "not what bblogin 0.x wrote"
    with open(_paths.accounts_file(), "w", encoding="utf-8") as fh:
        json.dump({"version": 1, "active": dict.fromkeys(active, identity), "accounts": {identity: old}}, fh, indent=2)
    return identity


def test_a_version_1_index_is_migrated_without_a_new_login(devidp, monkeypatch: pytest.MonkeyPatch) -> None:
    from bblogin._hot import _answer

    with open(_paths.config_file(), "w", encoding="utf-8") as fh:
        fh.write(V1_CONFIG.format(issuer=devidp.issuer))
    login(devidp, "slim")
    identity = write_v1_index("slim", ["work", "staging", "slim"])  # the bug: slim's login under work's and staging's name too
    logins = grants(devidp)
    monkeypatch.setenv("KUBERNETES_EXEC_INFO", EXEC_INFO)
    assert _answer.kubectl(["--profile", "slim"]) is None  # the hot path declines an old index (its mirror: written by a full-path call)
    assert kubectl("slim", hot=False).returncode == 0  # the full path settles it and mirrors the result
    assert _answer.kubectl(["--profile", "slim"]) is not None
    assert "groups" not in served_claims("slim")
    for profile in ("work", "staging"):  # they ask for groups: slim's token is not theirs
        done = kubectl(profile)
        assert done.returncode == 4 and f"bblogin login --profile {profile}" in done.stderr, done.stderr
    data = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())
    assert data["version"] == 2 and data["active"] == {"slim": identity}
    (record,) = data["accounts"].values()
    assert record["id"] == identity and record["profiles"] == ["slim"]  # the keyring entries stay where they were
    assert grants(devidp) == logins, "the migration needed a new login"


def test_a_version_1_index_shared_by_profiles_asking_for_the_same_keeps_serving_all_of_them(devidp) -> None:
    with open(_paths.config_file(), "w", encoding="utf-8") as fh:
        fh.write(V1_CONFIG.format(issuer=devidp.issuer))
    login(devidp, "staging")
    identity = write_v1_index("staging", ["work", "staging"])
    assert "groups" in served_claims("work") and "groups" in served_claims("staging")
    (record,) = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())["accounts"].values()
    assert record["id"] == identity and sorted(record["profiles"]) == ["staging", "work"]
    assert bblogin("logout", "--profile", "staging").returncode == 0
    assert "groups" in served_claims("work")


def test_settling_a_version_1_index_keeps_what_it_cannot_place_and_serves_it_to_nobody() -> None:
    """The rules of _index.settle on a parsed version 1 file: the owner's shape when the owner
    still names the account's party; "" (never served, still listed) when it is gone or names
    another party; other active profiles join only with the very same party and shape."""
    party = ("oidc", "https://idp.example", "bblogin")
    record = {"provider": "oidc", "issuer": "https://idp.example", "client_id": "bblogin", "sub": "s", "tokens": {}}
    data = {
        "version": 1,
        "active": {"work": "a", "staging": "a", "slim": "a", "other-idp": "a", "gone": "b"},
        "accounts": {"a": {**record, "id": "a", "profile": "work"}, "b": {**record, "id": "b", "sub": "t", "profile": "gone"}, "bad": {"id": "bad", "profile": 3}},
    }
    index = _index._parse(data)
    assert set(index.accounts) == {"a", "b"} and index.accounts["a"].identity
    assert index.unreadable == {"bad": {"id": "bad", "profile": 3}}  # kept as it is (logout --all deletes its secrets)
    shapes = {"work": (party, "S1"), "staging": (party, "S1"), "slim": (party, "S2"), "other-idp": (("oidc", "https://elsewhere", "bblogin"), "S1")}
    _index.settle(index, shapes)
    a, b = index.accounts["a"], index.accounts["b"]
    assert (a.shape, a.profiles) == ("S1", ["work", "staging"])
    assert (b.shape, b.profiles) == ("", ["gone"])  # kept for logout and the TUI, served to nobody
    assert index.active == {"work": "a", "staging": "a", "gone": "b"}  # slim and other-idp need their own login


def test_a_refresh_token_dex_ended_for_another_shapes_login_says_why(devidp) -> None:
    """dex (and the dev IdP) keep one refresh token per user, client and connector: slim's login
    deletes work's. work is served its own tokens while they last, then asks for a login — and
    says why, with what avoids it."""
    from tests.test_session import make_expiring

    login(devidp, "work", *scopes(*WITH_GROUPS))
    login(devidp, "slim", *scopes(*WITHOUT_GROUPS))
    assert "groups" in served_claims("work")  # still its own, valid tokens
    make_expiring("work")
    done = kubectl("work")
    assert done.returncode == 4, done.stderr
    assert "profile slim logged in as the same user, with other scopes, since" in done.stderr and "each its own client" in done.stderr
    assert "groups" not in served_claims("slim")  # slim is untouched


def test_a_version_1_login_of_a_flags_only_kubeconfig_entry_is_claimed_by_its_first_call(devidp) -> None:
    """bblogin 0.x: a flags-only entry logged in as `adhoc-…` (issuer and client), and there was no
    adhoc-profiles.json. Another command settles the index first (the owner is unknown then);
    the entry's first call still finds its login — no new login — and the hot path serves next."""
    args = ["--issuer", devidp.issuer, "--client-id", "bblogin", "--connector-id", "bitbucket-cloud"]
    done = bblogin("login", *args, "--flow", "device", "--no-browser")
    assert done.returncode == 0, done.stderr
    (record,) = _index.load().accounts.values()
    from bblogin._adhoc import legacy_name

    owner = legacy_name(devidp.issuer, "bblogin")  # the name 0.x gave the entry
    identity = write_v1_index(owner, [owner])
    os.remove(_paths.adhoc_profiles_file())  # 0.x had none
    logins = grants(devidp)
    assert bblogin("status").returncode == 0  # settles the index before the entry is seen
    env = {**os.environ, "KUBERNETES_EXEC_INFO": EXEC_INFO}
    for _ in ("full path claims it", "hot path serves it"):
        k = subprocess.run([sys.executable, "-m", "bblogin", "kubectl", *args], capture_output=True, text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
        assert k.returncode == 0, k.stderr
    assert grants(devidp) == logins, "the migration made a flags-only kubeconfig entry log in again"
    (claimed,) = _index.load().accounts.values()
    assert claimed.id == identity and claimed.shape


def test_a_record_bblogin_cannot_read_is_kept_and_logout_all_deletes_its_secrets(devidp) -> None:
    """A version 1 record missing a field (hand-edited): the migration keeps it aside, nothing
    serves it, and `logout --all` deletes its keyring entries instead of orphaning them."""
    from bblogin._store import SecretStore

    with open(_paths.config_file(), "w", encoding="utf-8") as fh:
        fh.write(V1_CONFIG.format(issuer=devidp.issuer))
    login(devidp, "slim")
    identity = write_v1_index("slim", ["slim"])
    data = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())
    broken = {k: v for k, v in data["accounts"][identity].items() if k != "provider"} | {"id": "cccc000000000003", "sub": "noprov"}
    data["accounts"][broken["id"]] = broken
    store = SecretStore("keyring")
    store.set(broken["id"], "refresh_token", "rt-broken")
    with open(_paths.accounts_file(), "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    assert "groups" not in served_claims("slim")  # migrated, the readable record still serves
    kept = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())
    assert kept["version"] == 2 and kept["unreadable"] == {broken["id"]: broken}
    done = bblogin("logout", "--all")
    assert done.returncode == 0 and "could not read" in done.stderr, done.stderr
    assert store.get(broken["id"], "refresh_token") is None, "logout --all left the unreadable record's secrets behind"
    assert _index.load().unreadable == {} and _index.load().accounts == {}


def test_a_version_1_record_that_named_no_profile_is_listed_and_can_be_logged_out(devidp) -> None:
    with open(_paths.config_file(), "w", encoding="utf-8") as fh:
        fh.write(V1_CONFIG.format(issuer=devidp.issuer))
    login(devidp, "slim")
    identity = write_v1_index("slim", [])
    data = json.loads(open(_paths.accounts_file(), encoding="utf-8").read())
    data["accounts"][identity].pop("profile")
    with open(_paths.accounts_file(), "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    listing = bblogin("accounts")
    assert "used by no profile" in listing.stdout and f"bblogin logout {identity}" in listing.stdout, listing.stdout
    assert json.loads(bblogin("accounts", "--json").stdout)["used_by_no_profile"][0]["token_set"] == identity
    assert bblogin("logout", identity).returncode == 0 and _index.load().accounts == {}
