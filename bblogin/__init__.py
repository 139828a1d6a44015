"""bblogin: log in with your Bitbucket identity and serve tokens to kubectl, git and people.

Importing this package must stay cheap: kubectl and git spawn bblogin on every call, so nothing
here imports more than the standard library needs for the version string.
"""

__version__ = "0.1.0"
