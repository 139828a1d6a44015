"""A double of Bitbucket Pipelines' OIDC issuers, one per workspace, at
``{base}/pipelines/2.0/workspaces/{workspace}/pipelines-config/identity/oidc`` with
``/.well-known/openid-configuration`` and ``/keys.json`` (RS256). Step tokens carry what
Bitbucket puts in them: sub ``{repositoryUuid}:{stepUuid}`` (deployments:
``{repositoryUuid}:{deploymentEnvironmentUuid}:{stepUuid}``), aud
``ari:cloud:bitbucket::workspace/{workspace uuid}``, workspaceUuid, repositoryUuid,
pipelineUuid, stepUuid, branchName, deploymentEnvironmentUuid."""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import jwt

from bblogin.devidp._keys import SigningKey
from bblogin.devidp._web import Reply, Request, json_reply

_PATH = re.compile(r"^/pipelines/2\.0/workspaces/([A-Za-z0-9_.-]+)/pipelines-config/identity/oidc(/\.well-known/openid-configuration|/keys\.json)$")
_CLAIMS = ["sub", "aud", "iss", "iat", "exp", "workspaceUuid", "repositoryUuid", "pipelineUuid", "stepUuid", "deploymentEnvironmentUuid", "branchName"]


def _braced_uuid() -> str:
    return "{" + str(uuid.uuid4()) + "}"


class PipelinesIssuer:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.key = SigningKey.generate()
        self.workspaces = {"acme": "{3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f}"}  # slug -> uuid

    def workspace_uuid(self, workspace: str) -> str:
        return self.workspaces.setdefault(workspace, "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"bitbucket-workspace:{workspace}")) + "}")

    def issuer(self, workspace: str = "acme") -> str:
        return f"{self.base_url}/pipelines/2.0/workspaces/{workspace}/pipelines-config/identity/oidc"

    def audience(self, workspace: str = "acme") -> str:
        return f"ari:cloud:bitbucket::workspace/{self.workspace_uuid(workspace).strip('{}')}"

    def serve(self, request: Request) -> Reply | None:
        """The issuer's discovery document and JWKS; None for any other path."""
        match = _PATH.match(request.path)
        if match is None:
            return None
        workspace, what = match.groups()
        if what == "/keys.json":
            return json_reply(200, {"keys": [self.key.jwk()]})
        issuer = self.issuer(workspace)
        return json_reply(200, {
            "issuer": issuer,
            "jwks_uri": f"{issuer}/keys.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": _CLAIMS,
        })

    def mint(
        self,
        *,
        workspace: str = "acme",
        repository_uuid: str | None = None,
        step_uuid: str | None = None,
        branch: str = "main",
        ttl: int = 3600,
        audience: str | None = None,
        deployment_environment_uuid: str | None = None,
        clock_offset: int = 0,
    ) -> str:
        """A step's BITBUCKET_STEP_OIDC_TOKEN. A negative ttl gives an expired token;
        ``clock_offset`` is the issuer's clock minus this machine's (a runner whose clock is behind
        gets tokens issued "in the future")."""
        repo, step = repository_uuid or _braced_uuid(), step_uuid or _braced_uuid()
        now = int(time.time()) + clock_offset
        claims: dict[str, Any] = {
            "sub": f"{repo}:{deployment_environment_uuid}:{step}" if deployment_environment_uuid else f"{repo}:{step}",
            "aud": audience or self.audience(workspace),
            "iss": self.issuer(workspace),
            "iat": now,
            "exp": now + ttl,
            "workspaceUuid": self.workspace_uuid(workspace),
            "repositoryUuid": repo,
            "pipelineUuid": _braced_uuid(),
            "stepUuid": step,
            "branchName": branch,
        }
        if deployment_environment_uuid:
            claims["deploymentEnvironmentUuid"] = deployment_environment_uuid
        return jwt.encode(claims, self.key.private, algorithm="RS256", headers={"kid": self.key.kid})

    def verify(self, token: str, issuer: str) -> dict[str, Any] | None:
        """What go-oidc checks for dex's oidc connector when the client ID check is skipped (as
        dex's token exchange does): signature by the issuer's key, iss, exp. Not aud."""
        if not issuer.startswith(self.base_url + "/") or _PATH.match(issuer.removeprefix(self.base_url) + "/keys.json") is None:
            return None
        try:
            return jwt.decode(token, self.key.private.public_key(), algorithms=["RS256"], issuer=issuer, options={"verify_aud": False, "require": ["exp"]})
        except jwt.PyJWTError:
            return None
