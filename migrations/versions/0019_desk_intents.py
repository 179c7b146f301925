"""What each operator last asked for at the desk, and the Asterisk nodes that missed it (away when it was sent):
a node that comes back restores its queues from its own astdb, so the API process applies the missed change there

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-30 21:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'desk_intents',
        sa.Column('operator', sa.String(length=64), primary_key=True),
        sa.Column('logged_in', sa.Boolean(), nullable=True),
        sa.Column('paused', sa.Boolean(), nullable=True),
        sa.Column('reason', sa.String(length=32), nullable=False, server_default=''),
        sa.Column('version', sa.Integer(), nullable=False, server_default='1'),
        sa.Column('missed', sa.JSON(), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table('desk_intents')
