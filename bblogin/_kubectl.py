"""The kubectl exec credential protocol (client.authentication.k8s.io v1 and v1beta1). Stdlib only.

kubectl passes ``KUBERNETES_EXEC_INFO`` (an ExecCredential with ``spec.interactive``) and reads one
ExecCredential from stdout; everything for people goes to stderr. We answer in the apiVersion
kubectl sent; without the variable (old kubectl), v1beta1, as kubectl's docs prescribe.
"""

from __future__ import annotations

import json

from bblogin._errors import UsageError
from bblogin._timefmt import rfc3339

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def parse_exec_info(value: str | None) -> tuple[str, bool]:
    """(apiVersion to answer in, whether a person may be asked) from KUBERNETES_EXEC_INFO."""
    if not value:
        return V1BETA1, False
    try:
        info = json.loads(value)
    except ValueError:
        raise UsageError("KUBERNETES_EXEC_INFO is not JSON", hint="run bblogin from kubectl's exec plugin, or unset the variable") from None
    if not isinstance(info, dict):
        raise UsageError("KUBERNETES_EXEC_INFO is not a JSON object")
    version = info.get("apiVersion")
    if version not in (V1, V1BETA1):
        raise UsageError(f"KUBERNETES_EXEC_INFO asks for apiVersion {version!r}; bblogin speaks {V1} and {V1BETA1}")
    spec = info.get("spec")
    interactive = isinstance(spec, dict) and spec.get("interactive") is True
    return version, interactive


def format_exec_credential(api_version: str, token: str, expires_at: int) -> str:
    """The one line kubectl reads from stdout."""
    status = {"token": token, "expirationTimestamp": rfc3339(expires_at)}
    return json.dumps({"apiVersion": api_version, "kind": "ExecCredential", "spec": {}, "status": status}, separators=(",", ":")) + "\n"
