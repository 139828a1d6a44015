"""The hot path: what kubectl and git run on every call, standard library only.

kubectl (exec credential plugin) and git (credential helper) start bblogin for every request.
When the answer is already cached, this package gives it without the full command's machinery:

  _launcher  what kubeconfigs and git configs run (``python -S …/_hot/_launcher.py``): no site,
             no pip wrapper; hands over to ``_cli.run`` (the full command) when the answer is None
  _answer    the boundary: parses the command line (a strict subset of argparse's grammar),
             reads the mirrors, checks the token (``cached_token``, shared with the full path),
             reads the secret, prints; any doubt or error means "decline"
  _mirror    the marshal mirrors of config.toml and accounts.json (written by the full path),
             read capped and digest-checked
  _dbus      a minimal Secret Service client over raw D-Bus, pipelined, bounded
  _chunks    how long secrets are split across keyring entries (shared with the full path's store)

Besides itself it may import only stdlib-only leaf modules it shares with the full path
(``_paths``, ``_kubectl``, ``_gitcred``, ``_timefmt``) and a few C modules — not even ``os``.
tests/test_hot.py runs it in a fresh process and fails on anything outside that allow-list.
Nothing here imports the full path, except the launcher's hand-over.
"""
