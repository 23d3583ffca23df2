"""Moved to ``idp.jose`` (shared with the federation client, which must not import a protocol front-end)."""

from idp.jose import (
    ASYMMETRIC,
    FORBIDDEN_HEADERS,
    MAX_JWT_BYTES,
    JwtRejected,
    import_client_keys,
    read_header,
    sign_compact,
    verify,
)

__all__ = ["ASYMMETRIC", "FORBIDDEN_HEADERS", "MAX_JWT_BYTES", "JwtRejected", "import_client_keys", "read_header",
           "sign_compact", "verify"]
