"""``idp account issue-provisional``, ``idp outbox`` (filled in by the activation work)."""

COMMANDS: list = []
