"""SQL storage of the saml front-end (tables registered on the shared metadata)."""
