"""``idp keys …`` commands (filled in by the keys work)."""

COMMANDS: list = []
