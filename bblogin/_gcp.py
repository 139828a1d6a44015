"""Google Cloud workload identity federation: bblogin as an *executable-sourced credential*.

Google's client libraries (google-auth's ``google.auth.pluggable.Credentials``; gcloud, Go, Java,
Node alike) read an ``external_account`` configuration whose ``credential_source.executable``
names a command. With ``GOOGLE_EXTERNAL_ACCOUNT_ALLOW_EXECUTABLES=1`` they run it (Python's
``shlex.split``, Go's and Java's whitespace splitting; no shell) with ``GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE``, ``_TOKEN_TYPE``, ``_INTERACTIVE``
(0/1), ``_IMPERSONATED_EMAIL`` and ``_OUTPUT_FILE`` set, and read one JSON response:
``{"version": 1, "success": true, "token_type": "urn:ietf:params:oauth:token-type:id_token",
"id_token": …, "expiration_time": EPOCH}`` or ``{"version": 1, "success": false, "code", "message"}``.
Non-interactive, stdout and stderr are one pipe that must hold exactly that JSON; interactive
(workforce pools only), stdout is the terminal and the response is read from the output file.
A valid, unexpired response in the output file is used without running the command. The library
then trades the token at STS (RFC 8693) and, with impersonation, at IAM Credentials
``generateAccessToken``: bblogin itself never talks to Google.
"""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from typing import Any

from bblogin._errors import StorageError, UsageError
from bblogin._files import atomic_write_bytes
from bblogin._record import record

VERSION = 1
ID_TOKEN = "urn:ietf:params:oauth:token-type:id_token"
JWT = "urn:ietf:params:oauth:token-type:jwt"
TOKEN_TYPES = (ID_TOKEN, JWT)  # the OIDC ones: bblogin has no SAML assertion to give
STS_TOKEN_URL = "https://sts.googleapis.com/v1/token"
IMPERSONATION_URL = "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/{email}:generateAccessToken"
TIMEOUT_MILLIS = 30_000  # the library's default and gcloud's: 5000..120000
GOOGLE_TOKEN_LIFETIME = 3600  # what STS and generateAccessToken give unless token_lifetime_seconds says otherwise
PROFILE_ANSWER_LIFETIME = 600  # seconds: the longest a profile's token is offered for reuse (use/logout may change whose it should be)
MAX_ANSWER = 256 * 1024  # bytes: more is no executable response
REFRESH_THRESHOLD = 225  # google-auth renews 3 min 45 s before a token's expiry (_helpers.REFRESH_THRESHOLD)
WORKLOAD_AUDIENCE = re.compile(r"//iam\.googleapis\.com/projects/\d+/locations/global/workloadIdentityPools/[a-z0-9-]{4,32}/providers/[a-z0-9-]{4,32}")
SERVICE_ACCOUNT = re.compile(r"[a-z0-9][a-z0-9.-]*@[a-z0-9][a-z0-9.-]*\.iam\.gserviceaccount\.com|[a-z0-9][a-z0-9.-]*@[a-z0-9.-]+\.gserviceaccount\.com")


@record(frozen=True)
class LibraryRequest:
    """What the client library asked for, from the environment it runs bblogin in."""

    token_type: str
    interactive: bool  # GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE=1: stdout is the person's terminal
    said_no: str  # why no login may start ("" when the library allows one, or no library runs us)
    output_file: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> LibraryRequest:
        mode = env.get("GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE")
        if mode is not None and mode != "1":
            said_no = f"the client library runs bblogin non-interactively (GOOGLE_EXTERNAL_ACCOUNT_INTERACTIVE={mode})"
        elif mode is None and env.get("GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE"):
            said_no = "a client library runs bblogin (GOOGLE_EXTERNAL_ACCOUNT_AUDIENCE is set) without saying it may be interactive"
        else:
            said_no = ""  # interactive mode, or a person runs `bblogin gcp` by hand
        return cls(
            token_type=env.get("GOOGLE_EXTERNAL_ACCOUNT_TOKEN_TYPE") or ID_TOKEN,
            interactive=mode == "1",
            said_no=said_no,
            output_file=env.get("GOOGLE_EXTERNAL_ACCOUNT_OUTPUT_FILE") or None,
        )


def success(token: str, token_type: str, expires_at: int) -> dict[str, Any]:
    """``expires_at`` on this machine's clock: the library compares it with its own ``time.time()``."""
    return {"version": VERSION, "success": True, "token_type": token_type, "id_token": token, "expiration_time": int(expires_at)}


def failure(code: str, message: str) -> dict[str, Any]:
    return {"version": VERSION, "success": False, "code": code, "message": message}


def _is_answer(path: str) -> bool:
    """Whether ``path`` is a regular file holding an executable response (``version``, ``success``)."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
        with open(path, "rb") as fh:
            data = json.loads(fh.read(MAX_ANSWER))
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "version" in data and "success" in data


def write_output_file(path: str, response: dict[str, Any]) -> bytes:
    """The response where the library looks first (0600, atomic: it never reads half a token).
    Only into a directory that exists, and only over a previous answer: a configuration whose
    output_file names ``~/.bashrc`` must not replace it with a token. Returns the bytes written."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    fix = "change credential_source.executable.output_file in the credential configuration"
    if not os.path.isdir(directory):
        raise StorageError(f"the output_file's directory {directory} does not exist", hint=f"create it, or {fix}")
    if os.path.isdir(path):
        raise StorageError(f"the output_file {path} is a directory", hint=fix)
    if os.path.lexists(path) and not _is_answer(path):
        raise StorageError(f"the output_file {path} exists and is not a previous answer of an executable-sourced credential: bblogin does not replace it", hint=f"move it away, or {fix}")
    data = json.dumps(response).encode() + b"\n"
    atomic_write_bytes(path, data, own_dir=False)
    return data


def credential_config(
    audience: str,
    command: str,
    *,
    service_account: str | None = None,
    output_file: str | None = None,
    timeout_millis: int = TIMEOUT_MILLIS,
    token_lifetime: int | None = None,
) -> dict[str, Any]:
    """The ``external_account`` configuration ``gcloud iam workload-identity-pools
    create-cred-config AUDIENCE --executable-command=COMMAND`` writes (same keys, same defaults)."""
    if not WORKLOAD_AUDIENCE.fullmatch(audience):
        raise UsageError(
            f"--audience {audience!r} is not a workload identity provider",
            hint="give //iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL/providers/PROVIDER",
        )
    if not 5000 <= timeout_millis <= 120_000:
        raise UsageError("--timeout-millis must be between 5000 and 120000 (the client libraries refuse others)")
    executable: dict[str, Any] = {"command": command, "timeout_millis": timeout_millis}
    if output_file:
        executable["output_file"] = os.path.abspath(output_file)
    config: dict[str, Any] = {
        "universe_domain": "googleapis.com",
        "type": "external_account",
        "audience": audience,
        "subject_token_type": ID_TOKEN,
        "token_url": STS_TOKEN_URL,
        "credential_source": {"executable": executable},
    }
    if service_account:
        if not SERVICE_ACCOUNT.fullmatch(service_account):
            raise UsageError(f"--service-account {service_account!r} is not a service account email (NAME@PROJECT.iam.gserviceaccount.com)")
        config["service_account_impersonation_url"] = IMPERSONATION_URL.format(email=service_account)
        if token_lifetime:
            if not 600 <= token_lifetime <= 43200:
                raise UsageError("--token-lifetime must be between 600 and 43200 seconds (more than 3600 needs the iam.allowServiceAccountCredentialLifetimeExtension org policy)")
            config["service_account_impersonation"] = {"token_lifetime_seconds": token_lifetime}
    elif token_lifetime:
        raise UsageError("--token-lifetime needs --service-account: STS's own federated tokens always last an hour")
    return config
