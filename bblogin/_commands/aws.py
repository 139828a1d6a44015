"""`bblogin aws`: AWS credential_process via AssumeRoleWithWebIdentity, cached while more than 15
minutes remain (botocore asks again from 15 minutes before Expiration), in the keyring when there
is a real one — never in a plaintext file; without one every call asks STS (said under -v and by
`bblogin doctor`). A cache entry is keyed by everything that shapes STS's answer, --duration
included, and anything odd in it counts as a miss that the next answer overwrites."""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import sys

from bblogin._aws import TRUST_REFUSALS, AWSCredentials, STSError, assume_role, default_endpoint
from bblogin._claims import unverified_claims
from bblogin._commands._common import account_from_args, load_config, say
from bblogin._config import is_allowed_issuer
from bblogin._drift import drift_warning, shorter, step_token_expiry
from bblogin._errors import LoginRequired, StorageError, UsageError
from bblogin._interactive import Gate
from bblogin._exchange import PIPELINES_ENV, subject_token
from bblogin._store import SecretStore
from bblogin._timefmt import rfc3339
from bblogin._tokens import now
from bblogin._trustpolicy import compared_by_aws

DEFAULT_DURATION = 3600
REUSE_MARGIN = 15 * 60  # botocore refreshes 15 min (advisory) before Expiration: hand out only more than that
log = logging.getLogger("bblogin.aws")


def require_role(args: argparse.Namespace) -> None:
    if not args.role_arn:
        raise UsageError("--role-arn ARN is required", hint="bblogin aws --role-arn arn:aws:iam::ACCOUNT:role/NAME; or `bblogin aws trust-policy --account-id ID` for the role's trust policy")


def _web_identity_token(args: argparse.Namespace) -> tuple[str, bool, str | None]:
    """The token; whether it is a CI token bblogin cannot renew (it expires with the step); and
    the profile's ``proxy`` (its requests, STS's included, go through it), None for a CI token."""
    if args.from_env:
        return subject_token(args.from_env), True, None
    if os.environ.get(PIPELINES_ENV):
        return subject_token(PIPELINES_ENV), True, None
    from bblogin._session import get_credential

    config = load_config()
    profile = config.profile(args.profile)
    return get_credential(profile, kind="id_token", account=account_from_args(args, profile), interactive=Gate("aws", no_login=args.no_login)).token, False, profile.proxy


def _session_name(args: argparse.Namespace, claims: dict) -> str:
    if args.session_name:
        return args.session_name
    base = str(claims.get("email") or claims.get("preferred_username") or claims.get("stepUuid") or claims.get("sub") or "bblogin")
    return ("bblogin-" + re.sub(r"[^\w+=,.@-]", "-", base))[:64]


def cache_key(role_arn: str, session_name: str, claims: dict, endpoint: str, duration: int) -> str:
    """Everything that changes STS's answer: role, session name, who (iss, sub), where, how long."""
    parts = [role_arn, session_name, str(claims.get("iss")), str(claims.get("sub")), endpoint, str(duration)]
    return "aws-" + hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _parse_cached(text: str) -> AWSCredentials | None:
    """The cached credentials, or None for anything odd (a miss: the next answer overwrites it)."""
    try:
        data = json.loads(text)
        creds = AWSCredentials(*(data[k] for k in ("AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration")))
        if data.get("Version") != 1 or not all(isinstance(v, str) and v for v in (creds.access_key_id, creds.secret_access_key, creds.session_token)):
            return None
        creds.expires_at()
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return creds


def _open_cache() -> SecretStore | None:
    """The keyring when it is a real one; None (said under -v) when credentials cannot be cached."""
    store = SecretStore("keyring")
    try:
        if store.is_plaintext:
            log.info("the keyring backend keeps secrets in a plaintext file: not caching AWS credentials; every call asks STS")
            return None
    except StorageError as exc:
        log.info("no usable keyring (%s): not caching AWS credentials; every call asks STS", exc.message)
        return None
    return store


def duration_of(args: argparse.Namespace) -> int:
    duration = DEFAULT_DURATION if args.duration is None else args.duration
    if not 900 <= duration <= 43200:
        raise UsageError("--duration must be between 900 and 43200 seconds")
    return duration


def drift(claims: dict, duration: int, variable: str) -> str | None:
    """The expiration-drift warning for a session of ``duration`` bought with this CI token now.
    Raises :class:`LoginRequired` when the token has expired: what botocore shows then (it shows
    a credential_process's stderr only when it fails)."""
    at = now()
    exp = step_token_expiry(claims, at, f"${variable}")
    if exp <= at:
        raise LoginRequired(
            f"${variable} expired at {rfc3339(exp)}: STS refuses it, and credentials bought with it cannot be renewed",
            hint="a step gets one token for its whole run: keep the step shorter or split it; `bblogin aws config` in the step's script says when --duration outlives the token",
        )
    return drift_warning(f"AWS credentials asked for (--duration {duration})", at + duration, exp, renews_before=REUSE_MARGIN, now=at, hint=shorter("--duration", 900, exp - at))


def run(args: argparse.Namespace) -> int:
    require_role(args)
    duration = duration_of(args)
    endpoint = args.sts_endpoint or default_endpoint()
    if not is_allowed_issuer(endpoint):
        raise UsageError("--sts-endpoint must be https:// (http:// only on 127.0.0.1)")
    token, from_ci, proxy = _web_identity_token(args)
    claims = unverified_claims(token) or {}
    session_name = _session_name(args, claims)
    key = cache_key(args.role_arn, session_name, claims, endpoint, duration)
    store = _open_cache()
    cached = None
    if store is not None:
        try:
            cached = store.get(key, "aws_credentials")
        except StorageError as exc:
            log.info("cannot read the AWS credential cache (%s): asking STS", exc.message)
            store = None
    if cached:
        creds = _parse_cached(cached)
        if creds is None:
            log.info("the cached AWS credentials are malformed: asking STS, and replacing them")
        elif creds.expires_at() - REUSE_MARGIN > now():
            sys.stdout.write(creds.credential_process_json() + "\n")
            return 0
    from bblogin._http import make_client

    warning = drift(claims, duration, args.from_env or PIPELINES_ENV) if from_ci else None
    if warning:
        say(warning)
    with make_client(proxy=proxy) as http:
        try:
            creds = assume_role(http, endpoint, role_arn=args.role_arn, session_name=session_name, token=token, duration=duration)
        except STSError as exc:
            if exc.code not in TRUST_REFUSALS:
                raise
            in_step = not args.from_env and bool(os.environ.get(PIPELINES_ENV))
            raise STSError(exc.message, hint=f"{exc.hint}\n  {compared_by_aws(claims, args.role_arn, in_step=in_step)}", code=exc.code) from None
    answer = creds.credential_process_json()
    if store is not None:
        try:
            store.set(key, "aws_credentials", answer)
        except StorageError as exc:
            say(f"bblogin: not caching the AWS credentials ({exc.message})")
    sys.stdout.write(answer + "\n")
    return 0
