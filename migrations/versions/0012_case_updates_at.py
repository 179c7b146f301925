"""Case updates indexed by time: the Open311 service request updates feed is asked for by time range

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30 09:00:00
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_case_updates_at', 'case_updates', ['at'])


def downgrade() -> None:
    op.drop_index('ix_case_updates_at', table_name='case_updates')
