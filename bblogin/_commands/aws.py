"""`bblogin aws`: AWS credential_process via AssumeRoleWithWebIdentity, cached until shortly
before the credentials expire (in the keyring when there is one; never in a plaintext file)."""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys

from bblogin._aws import AWSCredentials, assume_role, default_endpoint
from bblogin._claims import unverified_claims
from bblogin._commands._common import account_from_args, load_config, on_terminal, say
from bblogin._config import is_allowed_issuer
from bblogin._errors import StorageError, UsageError
from bblogin._exchange import PIPELINES_ENV, subject_token
from bblogin._tokens import now

REUSE_MARGIN = 300  # hand out cached credentials only while they have 5 more minutes


def _web_identity_token(args: argparse.Namespace) -> str:
    if args.from_env:
        return subject_token(args.from_env)
    if os.environ.get(PIPELINES_ENV):
        return subject_token(PIPELINES_ENV)
    from bblogin._session import get_credential

    config = load_config()
    profile = config.profile(args.profile)
    return get_credential(profile, kind="id_token", account=account_from_args(args, profile), interactive=on_terminal()).token


def _session_name(args: argparse.Namespace, claims: dict) -> str:
    if args.session_name:
        return args.session_name
    base = str(claims.get("email") or claims.get("preferred_username") or claims.get("stepUuid") or claims.get("sub") or "bblogin")
    return ("bblogin-" + re.sub(r"[^\w+=,.@-]", "-", base))[:64]


def run(args: argparse.Namespace) -> int:
    if not 900 <= args.duration <= 43200:
        raise UsageError("--duration must be between 900 and 43200 seconds")
    endpoint = args.sts_endpoint or default_endpoint()
    if not is_allowed_issuer(endpoint):
        raise UsageError("--sts-endpoint must be https:// (http:// only on 127.0.0.1)")
    token = _web_identity_token(args)
    claims = unverified_claims(token) or {}
    session_name = _session_name(args, claims)
    key = "aws-" + hashlib.sha256("\n".join([args.role_arn, session_name, str(claims.get("iss")), str(claims.get("sub")), endpoint]).encode()).hexdigest()[:16]
    from bblogin._store import SecretStore

    store: SecretStore | None = SecretStore("keyring")
    try:
        cached = store.get(key, "aws_credentials") if store else None
    except StorageError:
        cached, store = None, None  # no keyring (a CI container): fetch every time, store nothing
    if cached:
        import json

        data = json.loads(cached)
        creds = AWSCredentials(data["AccessKeyId"], data["SecretAccessKey"], data["SessionToken"], data["Expiration"])
        if creds.expires_at() - REUSE_MARGIN > now():
            sys.stdout.write(cached + "\n")
            return 0
    from bblogin._http import make_client

    with make_client() as http:
        creds = assume_role(http, endpoint, role_arn=args.role_arn, session_name=session_name, token=token, duration=args.duration)
    answer = creds.credential_process_json()
    if store is not None:
        try:
            store.set(key, "aws_credentials", answer)
        except StorageError as exc:
            say(f"bblogin: not caching the AWS credentials ({exc.message})")
    sys.stdout.write(answer + "\n")
    return 0
