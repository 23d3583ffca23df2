"""account language

The language a family reads the screens in, stored on its account (``accounts.language``, a code among
``[i18n] languages``, NULL until first recorded) so that the messages school staff send it (the identifier sent
again from the console, the lockout notice) go out in that language rather than in French; and the language a
request for help was typed in (``help_requests.language``), shown in the school's inbox before any account exists.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('help_requests', schema=None) as batch_op:
        batch_op.drop_column('language')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('language')
