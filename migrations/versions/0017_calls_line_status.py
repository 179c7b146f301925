"""Calls indexed by line and status together: the history's status tabs for one line count each status from
this index (capped, like the tabs over the range alone), and a page of one line and one status is read in index
order instead of filtering a year of the line's calls

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30 08:40:00
"""
from alembic import op


revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_calls_line_status_started_id', 'calls', ['line', 'status', 'started_at', 'id'])


def downgrade() -> None:
    op.drop_index('ix_calls_line_status_started_id', table_name='calls')
