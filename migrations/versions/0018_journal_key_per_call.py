"""The journal's dedupe key unique per call, (node, linkedid, event_key), instead of (node, event_key); the
(node, linkedid) index goes, the new one leads with the same columns

A key is a SHA-1 of the event (its linkedid included), so it is unique per node exactly when it is unique per
call. But as the only key of a unique index it put every new row at a random place in the index: each batch
the listener wrote touched as many index pages as it had events, and SQLite wrote and checkpointed them all at
its commit (about 13 us of the listener's CPU an event at 276,000 events; more as the journal grows). Led by
the linkedid, a call's events land together, next to the newest calls.

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-30 12:30:00
"""
from alembic import op


revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('cel_journal', schema=None) as batch_op:
        batch_op.drop_constraint('uq_cel_journal_node_key', type_='unique')
        batch_op.create_unique_constraint('uq_cel_journal_node_call_key', ['node', 'linkedid', 'event_key'])
        batch_op.drop_index('ix_cel_journal_node_linkedid')


def downgrade() -> None:
    with op.batch_alter_table('cel_journal', schema=None) as batch_op:
        batch_op.create_index('ix_cel_journal_node_linkedid', ['node', 'linkedid'], unique=False)
        batch_op.drop_constraint('uq_cel_journal_node_call_key', type_='unique')
        batch_op.create_unique_constraint('uq_cel_journal_node_key', ['node', 'event_key'])
