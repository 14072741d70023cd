"""OAuth 2.0 for machines: the authorisation server and the check every data route runs.

Partners are machines, so the only grant is client credentials, built to RFC 9700 (OAuth 2.0
Security Best Current Practice): asymmetric client authentication preferred
(``private_key_jwt``), assertions bound to this server and single-use, short-lived
audience-restricted JWT access tokens (RFC 9068) without refresh tokens, explicit token
typing, an algorithm allow-list, tokens accepted in the ``Authorization`` header only.
Not done here: sender-constrained tokens (DPoP, mutual TLS), which RFC 9700 recommends and
a reverse proxy terminating mutual TLS could add later.

Modules:

* :mod:`~gateway.oauth.server`: the Authlib authorisation server (client credentials,
  ``private_key_jwt`` and ``client_secret_basic``, revocation, introspection);
* :mod:`~gateway.oauth.endpoints`: its routes, RFC 8414 metadata and the JWK set;
* :mod:`~gateway.oauth.tokens`: access tokens, issued and verified;
* :mod:`~gateway.oauth.resource`: ``require_scope``, the one dependency of every data route,
  and the route walk that proves it;
* :mod:`~gateway.oauth.status`: revocations, disabled clients and habilitations as each
  process sees them (the trade-off between a query per request and freshness is there);
* :mod:`~gateway.oauth.ratelimit`: per-client, per-scope limits counted in the database.

Nothing here is imported by :mod:`gateway.oauth` itself, so importing the models (as the
migrations do) pulls in no web framework.
"""
