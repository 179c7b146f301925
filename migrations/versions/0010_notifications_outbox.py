"""The notifications outbox: messages to departments about forwarded and overdue cases

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30 05:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'notifications',
        sa.Column('id', ID, nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('case_id', ID, nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('target', sa.String(length=2000), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('payload', sa.Text(), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('next_at', WHEN, nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('last_error', sa.Text(), nullable=False),
        sa.Column('lease_owner', sa.String(length=64), nullable=False),
        sa.Column('lease_until', WHEN, nullable=True),
        sa.Column('sent_at', WHEN, nullable=True),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('key', name='uq_notifications_key'),
    )
    op.create_index('ix_notifications_due', 'notifications', ['status', 'next_at'])
    op.create_index('ix_notifications_case_id', 'notifications', ['case_id'])


def downgrade() -> None:
    op.drop_index('ix_notifications_case_id', table_name='notifications')
    op.drop_index('ix_notifications_due', table_name='notifications')
    op.drop_table('notifications')
