"""AWS: AssumeRoleWithWebIdentity with an OIDC token, answered in `credential_process` format.

STS takes the web identity token itself as the credential (no AWS signature), so this needs no
AWS SDK: one form POST, one XML answer. STS errors become messages that say what to fix.
Throttling answers (HTTP 400 ``Throttling``, as botocore's retry handler knows them) are retried
with jittered exponential backoff; network trouble names STS, not the identity provider.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import random
import re
import time
import xml.etree.ElementTree as ET

import httpx

from bblogin import _http
from bblogin._errors import BbloginError, IdPError, IdPResponseError, IdPUnreachable, LoginFailed, TLSError, UsageError
from bblogin._record import record

log = logging.getLogger("bblogin.aws")

STS_VERSION = "2011-06-15"
_NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"
_HINTS = {
    "InvalidIdentityToken": "the role's trust policy or the IAM OIDC provider does not accept this token's issuer, audience or subject",
    "ExpiredTokenException": "the web identity token expired: in Pipelines, use the step's fresh BITBUCKET_STEP_OIDC_TOKEN",
    "IDPRejectedClaim": "the IAM OIDC provider rejected a claim (audience or thumbprint): check the provider's client id list",
    "AccessDenied": "the role's trust policy does not allow this subject (check its conditions on aud and sub)",
    "ValidationError": "check --role-arn, --duration (900 up to the role's maximum) and --session-name",
    "Throttling": "AWS STS is rate-limiting AssumeRoleWithWebIdentity for this account: wait a minute; cached credentials (in the keyring) avoid most calls",
}
# refusals of the token by the role's trust policy or its IAM OIDC provider: bblogin says what AWS compared
TRUST_REFUSALS = frozenset({"AccessDenied", "InvalidIdentityToken"})
# botocore's retryhandler/standard retry: these error codes are throttling, retried with backoff
THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded"})
MAX_ATTEMPTS = 4


class STSError(BbloginError):
    exit_code = LoginFailed.exit_code

    def __init__(self, message: str, *, hint: str | None = None, code: str = "") -> None:
        super().__init__(message, hint=hint)
        self.code = code  # STS's error code (InvalidIdentityToken, Throttling, …)


@record(frozen=True)
class AWSCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: str  # ISO 8601, as STS sends it

    def expires_at(self) -> int:
        return int(datetime.datetime.fromisoformat(self.expiration.replace("Z", "+00:00")).timestamp())

    def credential_process_json(self) -> str:
        return json.dumps(
            {"Version": 1, "AccessKeyId": self.access_key_id, "SecretAccessKey": self.secret_access_key, "SessionToken": self.session_token, "Expiration": self.expiration}
        )

    def __repr__(self) -> str:
        return f"AWSCredentials(access_key_id={self.access_key_id[:4]}…, expiration={self.expiration})"


# botocore's validate_region_name: a region is one DNS label, so it can never change the host
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")


def default_endpoint() -> str:
    """The regional STS endpoint for AWS_REGION (else AWS_DEFAULT_REGION), or the global one.
    UsageError for a value that is not a region name: the web identity token goes to this URL."""
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region:
        return "https://sts.amazonaws.com/"
    if not _REGION.fullmatch(region):
        raise UsageError(f"AWS_REGION/AWS_DEFAULT_REGION {region!r} is not a region name (such as eu-west-1)", hint="fix the variable, or pass --sts-endpoint URL")
    return f"https://sts.{region}.amazonaws.com/"


def _text(root: ET.Element, path: str) -> str:
    node = root.find(path)
    if node is None or not node.text:
        raise IdPResponseError(f"the STS answer lacks {path.split('}')[-1]}")
    return node.text.strip()


def assume_role(http: httpx.Client, endpoint: str, *, role_arn: str, session_name: str, token: str, duration: int) -> AWSCredentials:
    """AssumeRoleWithWebIdentity at ``endpoint``; STSError for a refusal, IdPError (naming STS)
    when STS cannot be reached or keeps failing."""
    attempt = 0
    while True:
        try:
            return _assume_role_once(http, endpoint, role_arn=role_arn, session_name=session_name, token=token, duration=duration)
        except STSError as exc:
            if exc.code not in THROTTLE_CODES:
                raise
            attempt += 1
            if attempt == MAX_ATTEMPTS:  # transient: exit 5 like any busy service, not a refusal
                raise IdPResponseError(f"{exc.message}, {MAX_ATTEMPTS} times in a row", hint=exc.hint) from None
            pause = 0.5 * 2.0 ** (attempt - 1) * random.uniform(0.5, 1.0)  # jittered, as botocore's standard mode
            log.debug("STS answered %s; retrying in %.1f s", exc.code, pause)
            time.sleep(pause)
        except IdPUnreachable as exc:
            hint = f"check the network and the STS endpoint {endpoint} (--sts-endpoint, or AWS_REGION for the regional one)"
            raise (TLSError if isinstance(exc, TLSError) else IdPUnreachable)(exc.message, hint=hint) from None
        except IdPError as exc:
            raise IdPResponseError(exc.message, hint="AWS STS (or a proxy in front of it) is failing; try again later") from None


def _assume_role_once(http: httpx.Client, endpoint: str, *, role_arn: str, session_name: str, token: str, duration: int) -> AWSCredentials:
    data = {
        "Action": "AssumeRoleWithWebIdentity",
        "Version": STS_VERSION,
        "RoleArn": role_arn,
        "RoleSessionName": session_name,
        "WebIdentityToken": token,
        "DurationSeconds": str(duration),
    }
    response = _http.request(http, "POST", endpoint, data=data, headers={"Accept": "application/xml"}, what="AssumeRoleWithWebIdentity at AWS STS")
    try:
        root = ET.fromstring(response.content)
    except ET.ParseError:
        raise IdPResponseError(f"STS answered HTTP {response.status_code} with something that is not XML") from None
    if response.status_code != 200:
        code = (root.findtext(f".//{_NS}Code") or root.findtext(".//Code") or "unknown error").strip()
        message = (root.findtext(f".//{_NS}Message") or root.findtext(".//Message") or "").strip()
        raise STSError(f"AWS STS refused AssumeRoleWithWebIdentity: {code}" + (f" ({message})" if message else ""), hint=_HINTS.get(code, "see the AWS STS documentation for this error"), code=code)
    creds = f".//{_NS}Credentials/{_NS}"
    return AWSCredentials(_text(root, creds + "AccessKeyId"), _text(root, creds + "SecretAccessKey"), _text(root, creds + "SessionToken"), _text(root, creds + "Expiration"))
