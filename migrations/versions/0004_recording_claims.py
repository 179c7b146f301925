"""Recording claims (no two workers on one WAV) and a journal index for finished calls

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 12:50:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=128), server_default='', nullable=False))
    with op.batch_alter_table('cel_journal', schema=None) as batch_op:
        batch_op.create_index('ix_cel_journal_node_event', ['node', 'event'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cel_journal', schema=None) as batch_op:
        batch_op.drop_index('ix_cel_journal_node_event')
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_column('claimed_by')
