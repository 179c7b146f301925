"""The journal's call ends indexed in journal order, so the listener's check for ended calls without a call log
reads only the calls that ended since its last check

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30 06:05:00
"""
from alembic import op


revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_cel_journal_node_event_id', 'cel_journal', ['node', 'event', 'id'])
    op.drop_index('ix_cel_journal_node_event', table_name='cel_journal')


def downgrade() -> None:
    op.create_index('ix_cel_journal_node_event', 'cel_journal', ['node', 'event'])
    op.drop_index('ix_cel_journal_node_event_id', table_name='cel_journal')
