"""saml allow unsigned requests

The IdP requires signed AuthnRequests from every SP by default (its metadata says
``WantAuthnRequestsSigned="true"``); this column records the operator's per-SP exception for a legacy SP
that cannot sign (``idp sp set ENTITY_ID --allow-unsigned-requests``).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 16:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import idp.storage.models  # noqa: F401 - custom column types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('saml_service_providers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('allow_unsigned_requests', sa.Boolean(), server_default=sa.text('false'),
                                      nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('saml_service_providers', schema=None) as batch_op:
        batch_op.drop_column('allow_unsigned_requests')
