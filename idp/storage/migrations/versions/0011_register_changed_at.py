"""accounts register changed at

When a register import last changed what an account's answers release (its pupil record, a child's record,
class, school, links, names). SAML's released attributes cache is keyed by it, and a CAS attributes copy
records the value it was computed from (``cas_session_attributes.register_version``) and is reused only while
it is the account's: the next answer of every protocol carries the new values.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04 20:55:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.storage.models

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('register_changed_at', idp.storage.models.UtcDateTime(), nullable=True))
    with op.batch_alter_table('cas_session_attributes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('register_version', sa.String(length=40), server_default='', nullable=False))
    # The copies kept before this upgrade say nothing of the register version they were computed from: they are a
    # cache, dropped, and the next ticket of each session computes and keeps its copy again.
    op.execute("DELETE FROM cas_session_attributes")


def downgrade() -> None:
    with op.batch_alter_table('cas_session_attributes', schema=None) as batch_op:
        batch_op.drop_column('register_version')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('register_changed_at')
