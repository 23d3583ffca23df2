"""reserved identifier

The ``p.nomNN`` identifier an SMS or FranceConnect activation shows above the password fields (password managers
file the password under it) is reserved for that activation transaction
(``activation_transactions.reserved_identifier``): while the transaction is neither ended nor expired, no other
activation, staff or command-line creation is given it, and the account is created under exactly it. A unique
index keeps one holder per identifier; an ended reservation is set back to NULL when its identifier is reserved
again. Transactions begun before this revision have no reservation: one at the password step starts again.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('activation_transactions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reserved_identifier', sa.String(length=64), nullable=True))
        batch_op.create_index('ux_activation_tx_reserved_identifier', ['reserved_identifier'], unique=True)


def downgrade() -> None:
    with op.batch_alter_table('activation_transactions', schema=None) as batch_op:
        batch_op.drop_index('ux_activation_tx_reserved_identifier')
        batch_op.drop_column('reserved_identifier')
