"""``idp saml …`` commands (filled in by the saml work)."""

COMMANDS: list = []
