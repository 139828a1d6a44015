"""OAuth 2.0 and OpenID Connect, one concern per module (like authlib's one module per RFC):

_cache (HTTP caching to disk), _discovery (OIDC Discovery), _jwks (key sets), _verify (ID tokens),
_pkce (RFC 7636), _grants (token endpoint, RFC 6749/8628/8693/7009), _loopback (RFC 8252 listener),
_device (RFC 8628 user interaction), _browser (launching one).
"""
