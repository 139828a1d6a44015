"""The development IdP: a faithful double of dex with the bitbucket-cloud connector, on 127.0.0.1.

For `bblogin demo`, `bblogin dev-idp` and the tests. Not a real identity provider.
"""

from bblogin.devidp._server import Client, DevIdP
from bblogin.devidp._users import USERS, dex_subject

__all__ = ["USERS", "Client", "DevIdP", "dex_subject"]
