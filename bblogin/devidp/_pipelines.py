"""A double of Bitbucket Pipelines' OIDC issuer, and dex's `oidc` connector that trusts it.

Issuer ``{base}/pipelines/2.0/workspaces/{workspace}/pipelines-config/identity/oidc`` with
``/.well-known/openid-configuration`` and ``/keys.json`` (RS256); tokens carry workspaceUuid,
repositoryUuid, pipelineUuid, stepUuid, branchName, sub ``{repositoryUuid}:{stepUuid}`` and aud
``ari:cloud:bitbucket::workspace/{workspace uuid}`` — as Bitbucket issues them.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import jwt

from bblogin.devidp._keys import SigningKey


class PipelinesIssuer:
    def __init__(self, base_url: str, workspace: str = "acme", workspace_uuid: str = "{3f7c0b1e-2d4a-4b6c-9e8f-0a1b2c3d4e5f}") -> None:
        self.workspace = workspace
        self.workspace_uuid = workspace_uuid
        self.issuer = f"{base_url}/pipelines/2.0/workspaces/{workspace}/pipelines-config/identity/oidc"
        self.audience = f"ari:cloud:bitbucket::workspace/{workspace_uuid.strip('{}')}"
        self.key = SigningKey.generate()

    @property
    def path(self) -> str:
        return self.issuer.split("/", 3)[3]

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "jwks_uri": f"{self.issuer}/keys.json",
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "aud", "iss", "iat", "exp", "workspaceUuid", "repositoryUuid", "pipelineUuid", "stepUuid", "branchName"],
        }

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.jwk()]}

    def mint(self, *, repository_uuid: str | None = None, step_uuid: str | None = None, branch: str = "main", ttl: int = 3600, audience: str | None = None, deployment_environment_uuid: str | None = None) -> str:
        repo = repository_uuid or "{" + str(uuid.uuid4()) + "}"
        step = step_uuid or "{" + str(uuid.uuid4()) + "}"
        now = int(time.time())
        sub = f"{repo}:{deployment_environment_uuid}:{step}" if deployment_environment_uuid else f"{repo}:{step}"
        claims = {
            "iss": self.issuer, "aud": audience or self.audience, "sub": sub, "iat": now, "exp": now + ttl,
            "workspaceUuid": self.workspace_uuid, "repositoryUuid": repo, "pipelineUuid": "{" + str(uuid.uuid4()) + "}",
            "stepUuid": step, "branchName": branch,
        }
        if deployment_environment_uuid:
            claims["deploymentEnvironmentUuid"] = deployment_environment_uuid
        return self.key.sign(claims)

    def verify(self, token: str) -> dict[str, Any] | None:
        """What dex's oidc connector checks: signature, issuer, audience (its clientID), expiry."""
        try:
            return jwt.decode(token, self.key.private.public_key(), algorithms=["RS256"], audience=self.audience, issuer=self.issuer)
        except jwt.PyJWTError:
            return None
