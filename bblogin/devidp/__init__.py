"""The development IdP: a faithful double of dex v2.45 with the bitbucket-cloud connector, on
127.0.0.1, with doubles of Bitbucket Cloud's login and of Bitbucket Pipelines' OIDC issuer.

For `bblogin demo`, `bblogin dev-idp` and the tests. Not a real identity provider.
"""

from bblogin.devidp._connectors import OIDCConfig
from bblogin.devidp._ids import dex_subject
from bblogin.devidp._provider import Client
from bblogin.devidp._server import DevIdP
from bblogin.devidp._users import USERS, BitbucketUser

__all__ = ["USERS", "BitbucketUser", "Client", "DevIdP", "OIDCConfig", "dex_subject"]
