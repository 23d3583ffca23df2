"""SQL storage of the oidc front-end (tables registered on the shared metadata)."""
