from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import pytest

from bblogin import _config, _configedit

EXISTING = """# my clusters
apiVersion: v1
kind: Config
clusters:
- name: prod   # the real one
  cluster:
    server: https://prod.example.com
users:
- name: someone-else
  user:
    token: keep-me
contexts: []
current-context: ""
"""


def setup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bblogin", "setup", "kubectl", *args], capture_output=True, text=True, timeout=60, env=os.environ.copy())


@pytest.fixture(autouse=True)
def profile() -> None:
    _configedit.save_profile(_config.Profile(name="work", issuer="https://dex.example.com/dex", client_id="bblogin"))


def test_existing_file_keeps_everything_and_gets_a_backup(tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(EXISTING)
    done = setup("--profile", "work", "--kubeconfig", str(path), "--context", "prod-bblogin", "--cluster", "prod")
    assert done.returncode == 0, done.stderr
    text = path.read_text()
    assert "# my clusters" in text and "# the real one" in text and "token: keep-me" in text
    assert (tmp_path / "config.bblogin-backup").read_text() == EXISTING
    assert os.stat(path).st_mode & 0o777 == 0o600
    view = subprocess.run([str(kubectl_bin), "--kubeconfig", str(path), "config", "view", "-o", "jsonpath={.users[?(@.name=='bblogin-work')].user.exec.args}"], capture_output=True, text=True)
    assert view.stdout.endswith('_launcher.py","kubectl","--profile","work"]')
    mode = subprocess.run([str(kubectl_bin), "--kubeconfig", str(path), "config", "view", "-o", "jsonpath={.users[?(@.name=='bblogin-work')].user.exec.interactiveMode}"], capture_output=True, text=True)
    assert mode.stdout == "IfAvailable"
    again = setup("--profile", "work", "--kubeconfig", str(path), "--context", "prod-bblogin", "--cluster", "prod")
    assert again.returncode == 0 and "nothing to change" in again.stderr
    assert path.read_text() == text


def test_fresh_file_and_print(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "kube" / "config"
    shown = setup("--profile", "work", "--kubeconfig", str(path), "--print", "--use-access-token")
    assert shown.returncode == 0 and "--use-access-token" in shown.stdout and not path.exists()
    assert setup("--profile", "work", "--kubeconfig", str(path)).returncode == 0
    assert "bblogin-work" in path.read_text() and not (path.parent / "config.bblogin-backup").exists()


def test_unknown_profile_and_broken_yaml(tmp_path: pathlib.Path) -> None:
    assert setup("--profile", "nope", "--kubeconfig", str(tmp_path / "c")).returncode == 3
    broken = tmp_path / "broken"
    broken.write_text("users: [unclosed\n")
    done = setup("--profile", "work", "--kubeconfig", str(broken))
    assert done.returncode == 3 and "not valid YAML" in done.stderr and broken.read_text() == "users: [unclosed\n"


def test_context_needs_an_existing_cluster_and_set_current_makes_it_current(tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(EXISTING)
    done = setup("--profile", "work", "--kubeconfig", str(path), "--context", "c", "--cluster", "typo")
    assert done.returncode == 3 and "no cluster 'typo' (it has: prod)" in done.stderr and "kubectl config set-cluster typo" in done.stderr
    assert path.read_text() == EXISTING and not (tmp_path / "config.bblogin-backup").exists()
    done = setup("--profile", "work", "--kubeconfig", str(path), "--context", "c", "--cluster", "prod")
    assert done.returncode == 0 and "no current context: pass --set-current" in done.stderr
    current = [str(kubectl_bin), "--kubeconfig", str(path), "config", "current-context"]
    assert subprocess.run(current, capture_output=True, text=True).stdout.strip() == ""
    done = setup("--profile", "work", "--kubeconfig", str(path), "--context", "c", "--cluster", "prod", "--set-current")
    assert done.returncode == 0 and "--set-current" not in done.stderr
    assert subprocess.run(current, capture_output=True, text=True).stdout.strip() == "c"
    assert setup("--profile", "work", "--kubeconfig", str(path), "--set-current").returncode == 2


def test_a_symlinked_kubeconfig_is_written_through_and_directories_keep_their_mode(tmp_path: pathlib.Path) -> None:
    dotfiles, kube = tmp_path / "dotfiles", tmp_path / "kube"
    dotfiles.mkdir(mode=0o755)
    kube.mkdir(mode=0o755)
    os.chmod(dotfiles, 0o755)
    os.chmod(kube, 0o755)
    target = dotfiles / "kubeconfig"
    target.write_text(EXISTING)
    (kube / "config").symlink_to(target)
    done = setup("--profile", "work", "--kubeconfig", str(kube / "config"))
    assert done.returncode == 0, done.stderr
    assert (kube / "config").is_symlink() and os.readlink(kube / "config") == str(target)
    assert "bblogin-work" in target.read_text() and "token: keep-me" in target.read_text()
    assert os.stat(dotfiles).st_mode & 0o777 == 0o755 and os.stat(kube).st_mode & 0o777 == 0o755
    assert (dotfiles / "kubeconfig.bblogin-backup").read_text() == EXISTING


def test_a_cluster_in_another_kubeconfig_file_counts(tmp_path: pathlib.Path, kubectl_bin: pathlib.Path) -> None:
    """KUBECONFIG=a:b: kubectl merges the files, so a context in the first (the one written) may
    name a cluster that only the second has; its current-context counts when the first sets none."""
    first, clusters = tmp_path / "config", tmp_path / "clusters.yaml"
    first.write_text("apiVersion: v1\nkind: Config\nusers: []\ncontexts: []\n")
    clusters.write_text(EXISTING.replace('current-context: ""', "current-context: elsewhere"))
    env = {**os.environ, "KUBECONFIG": os.pathsep.join([str(first), str(clusters)])}
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "kubectl", "--profile", "work", "--context", "c", "--cluster", "prod"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 0, done.stderr
    assert "current context is 'elsewhere', not c" in done.stderr, done.stderr
    view = subprocess.run([str(kubectl_bin), "config", "view", "--minify", "--context", "c", "-o", "jsonpath={.clusters[0].cluster.server}"], capture_output=True, text=True, env=env)
    assert view.stdout == "https://prod.example.com", view.stderr  # kubectl finds the cluster through the merge
    done = subprocess.run([sys.executable, "-m", "bblogin", "setup", "kubectl", "--profile", "work", "--context", "c", "--cluster", "typo"], capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 3 and "no cluster 'typo' (it has: prod)" in done.stderr, done.stderr


def test_print_shows_only_the_entry_it_would_write(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(EXISTING)
    shown = setup("--profile", "work", "--kubeconfig", str(path), "--context", "c", "--cluster", "prod", "--set-current", "--print")
    assert shown.returncode == 0, shown.stderr
    assert "keep-me" not in shown.stdout and "someone-else" not in shown.stdout and "prod.example.com" not in shown.stdout
    from ruamel.yaml import YAML

    printed = YAML(typ="safe").load(shown.stdout)
    assert [u["name"] for u in printed["users"]] == ["bblogin-work"] and printed["users"][0]["user"]["exec"]["args"][-2:] == ["--profile", "work"]
    assert printed["contexts"] == [{"name": "c", "context": {"cluster": "prod", "user": "bblogin-work"}}] and printed["current-context"] == "c"
    assert path.read_text() == EXISTING


def test_users_that_kubectl_cannot_read_are_an_error_and_nothing_changes(tmp_path: pathlib.Path) -> None:
    cases = (
        ("users:\n- just-a-string\n", "users[0] is a string", ()),
        ("users:\n  me:\n    token: t\n", "`users:` is a mapping, not a list", ()),
        ("clusters:\n  a:\n    server: https://127.0.0.1:9\n", "`clusters:` is a mapping, not a list", ("--context", "c", "--cluster", "a")),
    )
    for text, said, extra in cases:
        path = tmp_path / "config"
        path.write_text(text)
        done = setup("--profile", "work", "--kubeconfig", str(path), *extra)
        assert done.returncode == 3 and said in done.stderr and "nothing was changed" in done.stderr, done.stderr
        assert "internal error" not in done.stderr and path.read_text() == text
        assert not (tmp_path / "config.bblogin-backup").exists()


def test_the_pre_bblogin_original_is_kept_beside_the_last_backup(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(EXISTING)
    first = setup("--profile", "work", "--kubeconfig", str(path))
    assert first.returncode == 0 and "config.bblogin-original" in first.stderr, first.stderr
    after_first = path.read_text()
    assert setup("--profile", "work", "--kubeconfig", str(path), "--use-access-token").returncode == 0
    assert (tmp_path / "config.bblogin-backup").read_text() == after_first  # the previous state
    assert (tmp_path / "config.bblogin-original").read_text() == EXISTING  # and the one before bblogin


def test_a_user_entry_no_context_uses_is_called_unused(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text(EXISTING)
    done = setup("--profile", "work", "--kubeconfig", str(path))
    assert done.returncode == 0 and "No context uses user bblogin-work" in done.stderr and "kubectl config set-context NAME --cluster CLUSTER --user bblogin-work" in done.stderr
    done = setup("--profile", "work", "--kubeconfig", str(path), "--context", "c", "--cluster", "prod")
    assert done.returncode == 0 and "No context uses" not in done.stderr


def test_setup_kubectl_waits_for_kubectls_own_lock_and_then_keeps_what_kubectl_wrote(tmp_path: pathlib.Path) -> None:
    """kubectl creates FILE.lock while it modifies a kubeconfig; setup kubectl reads and writes under it."""
    import threading

    kubeconfig = tmp_path / "config"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\nusers: []\ncontexts: []\n")
    lock = tmp_path / "config.lock"
    lock.write_text("")

    def kubectl_finishes() -> None:  # what the kubectl holding the lock writes, then its unlock
        kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: [{name: mine, cluster: {server: 'https://mine.example'}}]\nusers: []\ncontexts: []\n")
        lock.unlink()

    threading.Timer(1.5, kubectl_finishes).start()
    assert setup("--profile", "work", "--kubeconfig", str(kubeconfig)).returncode == 0
    text = kubeconfig.read_text()
    assert "mine.example" in text and "bblogin-work" in text and not lock.exists()


def test_a_bitbucket_profile_is_never_wired_to_a_kubernetes_api(tmp_path: pathlib.Path) -> None:
    _configedit.save_profile(_config.Profile(name="bb", provider="bitbucket-cloud", issuer="https://bitbucket.org", client_id="KEY", scopes=_config.default_scopes("bitbucket-cloud")))
    path = tmp_path / "config"
    done = setup("--profile", "bb", "--kubeconfig", str(path), "--use-access-token")
    assert done.returncode == 2 and "never to a Kubernetes API server" in done.stderr and not path.exists(), done.stderr
