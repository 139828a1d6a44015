"""The stateful property test of `bblogin setup --from` (#27): a team's bundle changes, the user
edits what it added with the real kubectl and by hand, and undo runs at any point.

One hypothesis ``RuleBasedStateMachine`` over real files in fresh directories per example:
config.toml, the kubeconfig (written by bblogin and by the real kubectl binary), git's global
config (the real git), the state record. Rules: apply one of four versions of a bundle (a namespace
changes, a cluster and a git host come and go), undo, and the user's own moves — `kubectl config
use-context` (which re-serialises every entry), `set-context --namespace`, `delete-context`,
`set-cluster` over the bundle's cluster, their own git host for the bundle's profile, their own
profile where the bundle's would go.

After every step:

- config.toml loads, and kubectl reads the kubeconfig; no context names a cluster or user that is
  gone, no kubeconfig user runs a profile that is gone (nothing of bblogin dangles);
- every entry the user wrote is exactly as they wrote it (setup and undo never overwrite or remove it);
- what an apply writes points at nothing the user wrote (a kept entry never receives a token);
- right after an apply, planning the same bundle again changes nothing (a rerun is a no-op).

``doctor``'s closing checks are not run here (``run``'s last step; the other tests run them): the
machine applies hundreds of plans, and the checks are a second of subprocesses each.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import pathlib
import subprocess
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from bblogin import _config, _kubeconfig, _team
from bblogin._commands import doctor, setup_team

SETTINGS = settings(max_examples=20, stateful_step_count=10, deadline=None, suppress_health_check=list(HealthCheck))

PROFILE = '[profiles.work]\nissuer = "http://127.0.0.1:9/dex"\nclient_id = "bblogin"\n'
VERSIONS = [
    PROFILE + '[clusters.prod]\nserver = "https://k8s.example.com"\nprofile = "work"\ncontexts = [{ name = "prod" }, { name = "prod-payments", namespace = "payments" }]\n[git."https://git.example.com/team"]\nprofile = "work"\n',
    PROFILE + '[clusters.prod]\nserver = "https://k8s.example.com"\nprofile = "work"\ncontexts = [{ name = "prod" }, { name = "prod-payments", namespace = "billing" }]\n[git."https://git.example.com/team"]\nprofile = "work"\n',
    PROFILE + '[clusters.prod]\nserver = "https://k8s.example.com"\nprofile = "work"\n[clusters.staging]\nserver = "https://staging.example.com"\nprofile = "work"\n[git."https://git.example.com/ops"]\nprofile = "work"\n',
    'default_profile = "work"\n' + PROFILE + '[clusters.staging]\nserver = "https://staging.example.com"\nprofile = "work"\nuse_access_token = true\n',
]


class TeamSetup(RuleBasedStateMachine):
    kubectl_bin: pathlib.Path

    @initialize()
    def fresh_machine(self) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="bblogin-team-model-")
        root = pathlib.Path(self.tmp.name)
        self.home = root / "home"
        self.home.mkdir()
        (self.home / ".gitconfig").write_text("")
        self.saved = dict(os.environ)
        os.environ.update({
            "HOME": str(self.home), "KUBECONFIG": str(self.home / ".kube" / "config"), "GIT_CONFIG_GLOBAL": str(self.home / ".gitconfig"), "GIT_CONFIG_NOSYSTEM": "1",
            "BBLOGIN_CONFIG_DIR": str(root / "config"), "BBLOGIN_STATE_DIR": str(root / "state"), "BBLOGIN_CACHE_DIR": str(root / "cache"),
        })
        self.bundle = root / "bblogin.toml"
        self.mine: dict[str, Any] = {}  # what the user wrote: "kubeconfig|context|prod" -> the entry as kubectl shows it
        self.applied: str | None = None

    def teardown(self) -> None:
        if hasattr(self, "saved"):
            os.environ.clear()
            os.environ.update(self.saved)
            self.tmp.cleanup()

    # -- bblogin --------------------------------------------------------------------------------
    def setup(self, *flags: str) -> str:
        args = argparse.Namespace(source=str(self.bundle), undo="--undo" in flags, yes=True, dry_run=False, no_login=True, export=False)
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            original, doctor.run = doctor.run, lambda _args: 0  # see the module docstring
            try:
                assert setup_team.run(args) == 0, err.getvalue()
            finally:
                doctor.run = original
        assert "internal error" not in err.getvalue()
        return err.getvalue()

    @rule(version=st.integers(0, len(VERSIONS) - 1))
    def apply(self, version: int) -> None:
        self.bundle.write_text("bundle = 1\n" + VERSIONS[version])
        before = setup_team.Record.load(str(self.bundle)).entries
        self.setup()
        for key, value in setup_team.Record.load(str(self.bundle)).entries.items():  # what this run wrote points at nothing of the user's
            if before.get(key) != value:
                assert not set(self.points_at(key, value)) & set(self.mine), (key, value, list(self.mine))
        again = setup_team.plan(_team.parse(str(self.bundle), self.bundle.read_text()), setup_team.Record.load(str(self.bundle)), setup_team.State.read())
        assert not again.todo(), [(c.key, c.action, c.detail) for c in again.todo()]

    @staticmethod
    def points_at(key: str, value: Any) -> list[str]:
        kind = key.split("|")[1]
        if kind == "git host":
            return [f"config.toml|profile|{value['profile']}"]
        if kind == "default_profile":
            return [f"config.toml|profile|{value}"]
        if kind == "user":
            served = _team.bblogin_profile_of(value)
            return [f"config.toml|profile|{served[0]}"] if served else []
        if kind == "context":
            return [f"kubeconfig|cluster|{value.get('cluster')}", f"kubeconfig|user|{value.get('user')}"]
        return []

    @rule()
    def undo(self) -> None:
        if self.bundle.exists():
            self.setup("--undo")

    # -- the user ---------------------------------------------------------------------------------
    @rule(move=st.sampled_from(["use_context", "set_namespace", "delete prod", "delete prod-payments", "delete staging", "own_cluster", "own_git_host", "own_profile"]))
    def user(self, move: str) -> None:
        """One of the user's own moves (one rule, so that bblogin's two rules are drawn as often)."""
        if move.startswith("delete "):
            self.delete_context(move.split()[1])
        else:
            getattr(self, move)()

    def kubectl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(self.kubectl_bin), *args], capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)

    def view(self) -> dict[str, Any]:
        done = self.kubectl("config", "view", "-o", "json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def remember(self, kind: str, name: str) -> None:
        entries = {e["name"]: e[kind] for e in self.view().get(kind + "s") or []}
        self.mine[f"kubeconfig|{kind}|{name}"] = _kubeconfig.normal(entries[name])

    def use_context(self) -> None:
        if "prod" in {c["name"] for c in self.view().get("contexts") or []}:
            assert self.kubectl("config", "use-context", "prod").returncode == 0

    def set_namespace(self, namespace: str = "mine") -> None:
        if "prod-payments" in {c["name"] for c in self.view().get("contexts") or []}:
            assert self.kubectl("config", "set-context", "prod-payments", f"--namespace={namespace}").returncode == 0
            self.remember("context", "prod-payments")

    def delete_context(self, name: str) -> None:
        if name in {c["name"] for c in self.view().get("contexts") or []}:
            assert self.kubectl("config", "delete-context", name).returncode == 0
            self.mine.pop(f"kubeconfig|context|{name}", None)

    def own_cluster(self) -> None:
        assert self.kubectl("config", "set-cluster", "prod", "--server=https://my-own.example.org").returncode == 0
        self.remember("cluster", "prod")

    def own_git_host(self) -> None:
        config = _config.load()
        if "work" in config.profiles and not any(h.url == "https://other.example.com" for h in config.git_hosts):
            with open(config.path, "a") as fh:
                fh.write('\n[git."https://other.example.com"]\nprofile = "work"\n')
            self.mine["config.toml|git host|https://other.example.com"] = {"profile": "work"}

    def own_profile(self) -> None:
        config = _config.load()
        if "work" not in config.profiles:
            pathlib.Path(config.path).parent.mkdir(parents=True, exist_ok=True)
            with open(config.path, "a") as fh:
                fh.write('\n[profiles.work]\nissuer = "https://login.mycorp.example"\nclient_id = "mine"\n')
            self.mine["config.toml|profile|work"] = setup_team._config_entry(_config.load(), "profile", "work")

    # -- after every step ------------------------------------------------------------------------
    @invariant()
    def nothing_dangles_and_nothing_of_the_users_changed(self) -> None:
        if not hasattr(self, "bundle"):
            return
        config = _config.load()
        view = self.view()
        clusters = {c["name"] for c in view.get("clusters") or []}
        users = {u["name"]: u["user"] for u in view.get("users") or []}
        for ctx in view.get("contexts") or []:
            spec = ctx["context"]
            assert not spec.get("cluster") or spec["cluster"] in clusters, (ctx, clusters)
            assert not spec.get("user") or spec["user"] in users, (ctx, users)
        for name, user in users.items():
            served = _team.bblogin_profile_of(user)
            assert served is None or served[0] in config.profiles, (name, served, set(config.profiles))
        for key, value in self.mine.items():
            where, kind, name = key.split("|", 2)
            if where == "kubeconfig":
                now = {e["name"]: e[kind] for e in view.get(kind + "s") or []}
                assert _kubeconfig.normal(now.get(name)) == value, (key, now.get(name), value)
            else:
                assert setup_team._config_entry(config, kind, name) == value, key


def test_setup_from_never_overwrites_the_users_entries_nor_leaves_anything_dangling(kubectl_bin: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    TeamSetup.kubectl_bin = kubectl_bin
    run_state_machine_as_test(TeamSetup, settings=SETTINGS)
