"""``idp oidc …`` commands (filled in by the oidc work)."""

COMMANDS: list = []
