"""``idp import`` and ``idp purge`` (the register import lands separately)."""

COMMANDS: list = []
