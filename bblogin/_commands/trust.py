"""`bblogin aws trust-policy` and `bblogin gcp provider-condition`: print the trust conditions
that match a Pipelines step exactly (bblogin/_trustpolicy.py) — from the step's own token, a token in a
file, or the workspace and repository named by flags."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys

from bblogin._claims import unverified_claims
from bblogin._errors import UsageError
from bblogin._exchange import PIPELINES_ENV
from bblogin._trustpolicy import StepIdentity

_FLAGS = ("workspace", "workspace_uuid", "repository_uuid")
MAX_TOKEN = 64 * 1024  # bytes: a step token is about 1 KiB


def step_identity(args: argparse.Namespace) -> StepIdentity:
    given = [f for f in (*_FLAGS, "environment_uuid") if getattr(args, f)]
    if given:
        missing = [f"--{f.replace('_', '-')}" for f in _FLAGS if not getattr(args, f)]
        if missing or args.token_file:
            raise UsageError(
                "without a token, give all of --workspace, --workspace-uuid and --repository-uuid" if missing else "give either --token-file or the --workspace flags, not both",
                hint=f"missing: {', '.join(missing)}" if missing else None,
            )
        return StepIdentity.from_workspace(args.workspace, args.workspace_uuid, args.repository_uuid, args.environment_uuid)
    if args.token_file:
        try:
            with open(args.token_file, "rb") as fh:
                data = fh.read(MAX_TOKEN + 1)
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {args.token_file}: {exc.strerror}") from None
        if len(data) > MAX_TOKEN:
            raise UsageError(f"--token-file {args.token_file} is not a JWT: it holds more than {MAX_TOKEN // 1024} KiB", hint="pass the step's BITBUCKET_STEP_OIDC_TOKEN as it is")
        token = data.decode("utf-8", "replace").strip()
    else:
        token = os.environ.get(PIPELINES_ENV, "").strip()
        if not token:
            raise UsageError(
                f"no step token: ${PIPELINES_ENV} is not set",
                hint="run this in a step with `oidc: true`, pass --token-file FILE, or give --workspace, --workspace-uuid and --repository-uuid",
            )
    claims = unverified_claims(token)
    if claims is None:
        raise UsageError("the token is not a JWT", hint="pass the step's BITBUCKET_STEP_OIDC_TOKEN as it is")
    return StepIdentity.from_claims(claims)


def run_aws(args: argparse.Namespace) -> int:
    policy = step_identity(args).aws_trust_policy(args.account_id)
    sys.stdout.write(json.dumps(policy, indent=2) + "\n")
    return 0


def run_gcp(args: argparse.Namespace) -> int:
    identity = step_identity(args)
    mapping = identity.gcp_attribute_mapping()
    condition = identity.gcp_attribute_condition()
    member = f"principalSet://iam.googleapis.com/projects/PROJECT_NUMBER/locations/global/workloadIdentityPools/POOL_ID/{identity.gcp_principal_set()}"
    if args.json:
        out = {"issuer_uri": identity.issuer, "allowed_audiences": [identity.audience], "attribute_mapping": mapping, "attribute_condition": condition, "principal_set": identity.gcp_principal_set()}
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return 0
    mapping_flag = ",".join(f"{k}={v}" for k, v in mapping.items())
    lines = [
        "gcloud iam workload-identity-pools providers create-oidc PROVIDER_ID \\",
        "    --location=global --workload-identity-pool=POOL_ID \\",
        f"    --issuer-uri={shlex.quote(identity.issuer)} \\",
        f"    --allowed-audiences={shlex.quote(identity.audience)} \\",
        f"    --attribute-mapping={shlex.quote(mapping_flag)} \\",
        f"    --attribute-condition={shlex.quote(condition)}",
        "gcloud iam service-accounts add-iam-policy-binding SERVICE_ACCOUNT_EMAIL \\",
        "    --role=roles/iam.workloadIdentityUser \\",
        f"    --member={shlex.quote(member)}",
    ]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


# options of `bblogin aws`/`bblogin gcp` themselves, accepted before the action: these printers use none
_RUN_OPTIONS = {"aws": ("profile", "account", "role_arn", "duration", "session_name", "from_env", "sts_endpoint"), "gcp": ("profile", "account")}


def run(args: argparse.Namespace) -> int:
    given = [f"--{name.replace('_', '-')}" for name in _RUN_OPTIONS[args.trust_target] if getattr(args, name, None) is not None]
    if given:
        action = "aws trust-policy" if args.trust_target == "aws" else "gcp provider-condition"
        raise UsageError(f"`bblogin {action}` does not use {', '.join(given)}", hint="leave them out: the conditions come from the step's token or the --workspace flags")
    return run_aws(args) if args.trust_target == "aws" else run_gcp(args)
