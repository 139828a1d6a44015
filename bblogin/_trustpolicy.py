"""Trust conditions that line up with the Bitbucket Pipelines OIDC token: an AWS IAM role trust
policy and a Google Cloud workload identity provider's attribute mapping and CEL condition,
pinned to one workspace's issuer and audience and one repository (and deployment environment).

The Pipelines token (shared/protocol-facts.md): issuer
``https://api.bitbucket.org/2.0/workspaces/{workspace}/pipelines-config/identity/oidc``, aud
``ari:cloud:bitbucket::workspace/{workspace-uuid}`` (no braces), sub ``{repositoryUuid}:{stepUuid}``,
for deployments ``{repositoryUuid}:{deploymentEnvironmentUuid}:{stepUuid}`` (braced UUIDs).
AWS names its condition keys after the provider URL without ``https://``: ``<host/path>:aud``,
``<host/path>:sub``. Claims are read, never verified, here: what this module prints is a policy
for a person to review and install, not a decision to trust anyone.
"""

from __future__ import annotations

import json
import re
from typing import Any

from bblogin._errors import UsageError
from bblogin._record import record

BITBUCKET_ISSUER = "https://api.bitbucket.org/2.0/workspaces/{workspace}/pipelines-config/identity/oidc"
_UUID = re.compile(r"\{?([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}?")
_WORKSPACE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
_ISSUER_WORKSPACE = re.compile(r"/2\.0/workspaces/([^/]+)/pipelines-config/identity/oidc$")
_ACCOUNT_ID = re.compile(r"\d{12}")


def _uuid(value: str, flag: str) -> str:
    match = _UUID.fullmatch(value.strip())
    if match is None:
        raise UsageError(f"{flag} {value!r} is not a UUID", hint="copy it from the repository's or workspace's settings (with or without the braces)")
    return match.group(1).lower()  # as Bitbucket writes them in its tokens: the conditions compare case-sensitively


@record(frozen=True)
class StepIdentity:
    """What a trust condition pins: the workspace's issuer and audience, one repository, and
    optionally one deployment environment. UUIDs are kept without braces, in lower case."""

    issuer: str
    audience: str
    repository_uuid: str
    environment_uuid: str | None = None

    @classmethod
    def from_workspace(cls, workspace: str, workspace_uuid: str, repository_uuid: str, environment_uuid: str | None = None) -> StepIdentity:
        if not _WORKSPACE.fullmatch(workspace):
            raise UsageError(f"--workspace {workspace!r} is not a workspace ID (the slug in bitbucket.org/WORKSPACE/…)")
        return cls(
            issuer=BITBUCKET_ISSUER.format(workspace=workspace),
            audience=f"ari:cloud:bitbucket::workspace/{_uuid(workspace_uuid, '--workspace-uuid')}",
            repository_uuid=_uuid(repository_uuid, "--repository-uuid"),
            environment_uuid=_uuid(environment_uuid, "--environment-uuid") if environment_uuid else None,
        )

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> StepIdentity:
        """The identity of the step that holds this token (its deployment environment included)."""
        iss, aud, repo = claims.get("iss"), claims.get("aud"), claims.get("repositoryUuid")
        if isinstance(aud, list) and len(aud) == 1:
            aud = aud[0]
        if not (isinstance(iss, str) and isinstance(aud, str) and isinstance(repo, str) and _UUID.fullmatch(repo)):
            raise UsageError(
                "the token is not a Bitbucket Pipelines step token (it lacks iss, aud or repositoryUuid)",
                hint="run this in a step with `oidc: true`, pass --token-file with a step's token, or give --workspace, --workspace-uuid and --repository-uuid",
            )
        env = claims.get("deploymentEnvironmentUuid")
        return cls(iss, aud, _uuid(repo, "repositoryUuid"), _uuid(env, "deploymentEnvironmentUuid") if isinstance(env, str) and env else None)

    @property
    def key_prefix(self) -> str:
        """AWS's name for the IAM OIDC provider, and the prefix of its condition keys."""
        return re.sub(r"^https?://", "", self.issuer).rstrip("/")

    @property
    def sub_pattern(self) -> str:
        """Every step of the repository (in the environment): StringLike on the subject."""
        if self.environment_uuid:
            return f"{{{self.repository_uuid}}}:{{{self.environment_uuid}}}:*"
        return f"{{{self.repository_uuid}}}:*"

    def aws_trust_policy(self, account_id: str, partition: str = "aws") -> dict[str, Any]:
        if not _ACCOUNT_ID.fullmatch(account_id):
            raise UsageError(f"--account-id {account_id!r} is not an AWS account ID (12 digits)")
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": f"arn:{partition}:iam::{account_id}:oidc-provider/{self.key_prefix}"},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {f"{self.key_prefix}:aud": self.audience},
                        "StringLike": {f"{self.key_prefix}:sub": self.sub_pattern},
                    },
                }
            ],
        }

    def gcp_attribute_mapping(self) -> dict[str, str]:
        """google.subject is the step's sub (at most 77 bytes, 116 for deployments: under Google's 127)."""
        mapping = {
            "google.subject": "assertion.sub",
            "attribute.workspace_uuid": "assertion.workspaceUuid",
            "attribute.repository_uuid": "assertion.repositoryUuid",
        }  # only claims every step token has: mapping a missing claim fails the exchange
        if self.environment_uuid:
            mapping["attribute.deployment_environment_uuid"] = "assertion.deploymentEnvironmentUuid"
        return mapping

    def gcp_attribute_condition(self) -> str:
        """A CEL condition: only this repository's steps (in this environment) get a Google token."""
        condition = f"assertion.repositoryUuid == {json.dumps('{' + self.repository_uuid + '}')}"
        if self.environment_uuid:
            condition += f" && assertion.deploymentEnvironmentUuid == {json.dumps('{' + self.environment_uuid + '}')}"
        return condition

    def gcp_principal_set(self) -> str:
        """The ``principalSet`` member (after the pool's name) a service account binding grants:
        this repository's steps, as the attribute mapping names them."""
        return f"attribute.repository_uuid/{{{self.repository_uuid}}}"

    def flags(self) -> str | None:
        """The `--workspace … --repository-uuid …` flags that describe this identity, or None when
        its issuer is not Bitbucket's (then only the token itself can)."""
        match = _ISSUER_WORKSPACE.search(self.issuer)
        if not self.issuer.startswith("https://api.bitbucket.org/") or match is None:
            return None
        flags = f"--workspace {match.group(1)} --workspace-uuid {{{self.audience.rsplit('/', 1)[-1]}}} --repository-uuid {{{self.repository_uuid}}}"
        return flags + (f" --environment-uuid {{{self.environment_uuid}}}" if self.environment_uuid else "")


def account_of_role(role_arn: str) -> str | None:
    """The account ID in ``arn:aws:iam::123456789012:role/NAME``."""
    parts = role_arn.split(":")
    return parts[4] if len(parts) >= 6 and _ACCOUNT_ID.fullmatch(parts[4]) else None


def compared_by_aws(claims: dict[str, Any], role_arn: str, *, in_step: bool) -> str:
    """What AWS compared when it refused the token — the claims as condition keys, never the
    token — and the `bblogin aws trust-policy` command whose policy would match."""
    iss = str(claims.get("iss") or "?")
    prefix = re.sub(r"^https?://", "", iss).rstrip("/")
    aud = claims.get("aud")
    aud_text = ", ".join(map(str, aud)) if isinstance(aud, list) else str(aud)
    account = account_of_role(role_arn) or "ACCOUNT-ID"
    lines = [
        "AWS compared these values with the role's trust policy and its IAM OIDC provider:",
        f"    issuer (the provider arn:aws:iam::{account}:oidc-provider/{prefix} must exist): {iss}",
        f"    {prefix}:aud = {aud_text}",
        f"    {prefix}:sub = {claims.get('sub')}",
    ]
    try:
        identity = StepIdentity.from_claims(claims)
    except UsageError:
        return "\n".join(lines)
    flags = "" if in_step else identity.flags()
    if flags is not None:
        command = f"bblogin aws trust-policy --account-id {account}" + (f" {flags}" if flags else "")
        lines.append(f"  a trust policy that matches this step: {command}")
    return "\n".join(lines)
