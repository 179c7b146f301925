"""After-call notes (with a corrected topic) and the call-back worklist's claims, closures and attempts

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 02:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'call_notes',
        sa.Column('id', ID, nullable=False),
        sa.Column('call_id', ID, nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('operator', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_call_notes_call_id', 'call_notes', ['call_id'])
    op.create_table(
        'callback_items',
        sa.Column('id', ID, nullable=False),
        sa.Column('call_id', ID, nullable=False),
        sa.Column('claimed_by', sa.String(length=64), nullable=False),
        sa.Column('claimed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('closed_reason', sa.String(length=32), nullable=False),
        sa.Column('closed_by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('call_id', name='uq_callback_items_call'),
    )
    op.create_table(
        'callback_attempts',
        sa.Column('id', ID, nullable=False),
        sa.Column('call_id', ID, nullable=False),
        sa.Column('linkedid', sa.String(length=64), nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('operator', sa.String(length=64), nullable=False),
        sa.Column('number', sa.String(length=32), nullable=False),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('result', sa.String(length=32), nullable=False),
        sa.Column('detail', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_callback_attempts_call_id', 'callback_attempts', ['call_id'])
    op.create_index('ix_callback_attempts_linkedid', 'callback_attempts', ['linkedid'])


def downgrade() -> None:
    op.drop_index('ix_callback_attempts_linkedid', table_name='callback_attempts')
    op.drop_index('ix_callback_attempts_call_id', table_name='callback_attempts')
    op.drop_table('callback_attempts')
    op.drop_table('callback_items')
    op.drop_index('ix_call_notes_call_id', table_name='call_notes')
    op.drop_table('call_notes')
