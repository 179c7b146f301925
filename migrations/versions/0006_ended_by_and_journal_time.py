"""Who ended each call (ended_by), and a journal index by time for finding calls cut by an Asterisk restart

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 10:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls') as batch:
        batch.add_column(sa.Column('ended_by', sa.String(length=16), nullable=False, server_default=''))
    op.create_index('ix_cel_journal_node_time', 'cel_journal', ['node', 'event_time'])


def downgrade() -> None:
    op.drop_index('ix_cel_journal_node_time', table_name='cel_journal')
    with op.batch_alter_table('calls') as batch:
        batch.drop_column('ended_by')
