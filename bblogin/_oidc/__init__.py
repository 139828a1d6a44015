"""OAuth 2.0 and OpenID Connect client machinery, one protocol concern per module (as authlib
keeps one module per RFC). Nothing here is imported on the hot path.

    _cache      the IdP's public documents on disk, per Cache-Control (RFC 9111)
    _discovery  OpenID Connect Discovery / RFC 8414 metadata
    _jwks       signing keys (RFC 7517), refetched once on rotation
    _verify     ID token validation (OIDC Core §3.1.3.7)
    _pkce       PKCE S256 (RFC 7636)
    _grants     the token endpoint (RFC 6749, 8628, 8693) and revocation (RFC 7009), through authlib
    _loopback   the loopback redirect listener (RFC 8252 §7.3)
    _pages      the listener's HTML pages
    _device     the device flow's prompt and polling (RFC 8628)
    _browser    launching a browser, once, where it can be seen
"""
