"""`bblogin kubectl`: the kubectl exec credential plugin (the full path, after the hot path declined).

Only the ExecCredential JSON goes to stdout. When kubectl says the session is not interactive,
no browser opens and nothing waits for a person: a clear message names the login to run — or,
when the keyring cannot keep tokens (so a login would not help), the keyring's problem (exit 6).
"""

from __future__ import annotations

import os
import sys

from bblogin import _config, _kubectl
from bblogin._interactive import Gate
from bblogin._commands._common import account_from_args, load_config, profile_from_args
from bblogin._errors import ConfigError, LoginRequired
from bblogin._session import get_credential

TYPE_CHECKING = False  # argparse only for the annotations: a cached call never imports it (_cli._quick_args)
if TYPE_CHECKING:
    import argparse


_NOT_INTERACTIVE = "kubectl says the session is not interactive (interactiveMode Never, or kubectl's standard input is not a terminal)"
_NO_EXEC_INFO = "KUBERNETES_EXEC_INFO is not set, so nothing says a person is there (kubectl sets it; run by hand, use `bblogin token`)"


def run(args: argparse.Namespace) -> int:
    exec_info = os.environ.get("KUBERNETES_EXEC_INFO")
    api_version, interactive = _kubectl.parse_exec_info(exec_info)
    profile = profile_from_args(args, load_config())
    if profile.provider in _config.BITBUCKET_PROVIDERS:  # a kubeconfig written by hand; setup kubectl refuses it
        raise ConfigError(
            f"profile {profile.name} is {profile.provider}: its tokens are Bitbucket credentials that go only to that Bitbucket "
            "and its git hosts, never to a Kubernetes API server (docs/security.md, Which token goes where); nothing was sent",
            hint="use a profile of an OIDC identity provider (dex with its Bitbucket connector) in this kubeconfig entry",
        )
    gate = Gate("kubectl", no_login=args.no_login, said_no="" if interactive else _NOT_INTERACTIVE if exec_info else _NO_EXEC_INFO)
    kind = "access_token" if args.use_access_token or profile.use_access_token else "id_token"
    try:
        cred = get_credential(profile, kind=kind, account=account_from_args(args, profile), interactive=gate)
    except LoginRequired:
        from bblogin._store import SecretStore

        SecretStore(profile.storage).check()  # a login would not help while the keyring cannot keep tokens: name it (exit 6)
        raise
    sys.stdout.write(_kubectl.format_exec_credential(api_version, cred.token, cred.expires_at))
    return 0
