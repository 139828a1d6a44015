"""The kubectl exec credential protocol (client.authentication.k8s.io v1 and v1beta1). Stdlib only.

kubectl passes ``KUBERNETES_EXEC_INFO`` (an ExecCredential with ``spec.interactive``) and reads one
ExecCredential from stdout; everything for people goes to stderr. We answer in the apiVersion
kubectl sent; without the variable (old kubectl), v1beta1, as kubectl's docs prescribe.
"""

from bblogin._timefmt import rfc3339

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


def exec_info_api_version(value: str | None) -> str | None:
    """The hot path's reading of KUBERNETES_EXEC_INFO without `json` (which costs half a Python
    start-up): the apiVersion when the document names exactly one, as kubectl writes it; None when
    in doubt, and the full parser below decides."""
    if not value:
        return V1BETA1
    at = value.find('"apiVersion"')
    if at < 0 or "\\" in value or value.find('"apiVersion"', at + 1) >= 0:
        return None  # an escape could spell the key another way
    head = value[:at]
    if head.lstrip()[:1] != "{" or head.count("{") != 1 or "[" in head:
        return None  # only the document's own member: nothing may open before it but the document
    rest = value[at + len('"apiVersion"') :].lstrip()
    if not rest.startswith(":"):
        return None
    rest = rest[1:].lstrip()
    return next((v for v in (V1BETA1, V1) if rest.startswith(f'"{v}"')), None)


# KUBERNETES_EXEC_INFO byte for byte as kubectl writes it (Go's encoding/json; no cluster info), and
# what parsing it says: a cached call through kubectl then needs no `json` (`re` and `enum` with it).
# Any other text is parsed; tests/test_kubectl.py checks each entry against the parser.
KUBECTL_EXEC_INFO = {
    f'{{"kind":"ExecCredential","apiVersion":"{version}","spec":{{"interactive":{"true" if interactive else "false"}}}}}': (version, interactive)
    for version in (V1, V1BETA1)
    for interactive in (False, True)
}


def parse_exec_info(value: str | None) -> tuple[str, bool]:
    """(apiVersion to answer in, whether a person may be asked) from KUBERNETES_EXEC_INFO."""
    if not value:
        return V1BETA1, False
    known = KUBECTL_EXEC_INFO.get(value)
    if known is not None:
        return known
    import json

    from bblogin._errors import UsageError  # not at the top: the hot path has no use for the error tree

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


def _json_string(value: str) -> str:
    """A JSON string literal (RFC 8259 §7), without importing json."""
    out = ['"']
    for ch in value:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch < " " or ch in "\u2028\u2029":
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def format_exec_credential(api_version: str, token: str, expires_at: int) -> str:
    """The one line kubectl reads from stdout."""
    return (
        f'{{"apiVersion":{_json_string(api_version)},"kind":"ExecCredential","spec":{{}},'
        f'"status":{{"token":{_json_string(token)},"expirationTimestamp":{_json_string(rfc3339(expires_at))}}}}}\n'
    )
