"""``idp cas …`` commands (filled in by the cas work)."""

COMMANDS: list = []
