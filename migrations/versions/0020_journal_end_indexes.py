"""The journal's call ends indexed apart, in partial indexes of the LINKEDID_END rows alone: by journal order (the
check for ended calls without a call log) and by call (which of a batch's calls have ended), instead of an index
of every row by event name

Inserting a row into (node, event, id) cost the listener's database as much as the unique key did (on
PostgreSQL about 3 us of the COPY's 9 an event), for the one row in seventeen it was ever read for; and to say
which of a batch's calls had ended, PostgreSQL's planner scanned every end of the node through it.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-01 03:30:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None
ENDS = sa.text("event = 'LINKEDID_END'")


def upgrade() -> None:
    op.create_index('ix_cel_journal_node_end_id', 'cel_journal', ['node', 'id'],
                    sqlite_where=ENDS, postgresql_where=ENDS)
    op.create_index('ix_cel_journal_node_end_call', 'cel_journal', ['node', 'linkedid'],
                    sqlite_where=ENDS, postgresql_where=ENDS)
    op.drop_index('ix_cel_journal_node_event_id', table_name='cel_journal')


def downgrade() -> None:
    op.create_index('ix_cel_journal_node_event_id', 'cel_journal', ['node', 'event', 'id'])
    op.drop_index('ix_cel_journal_node_end_call', table_name='cel_journal')
    op.drop_index('ix_cel_journal_node_end_id', table_name='cel_journal')
