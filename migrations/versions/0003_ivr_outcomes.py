"""IVR outcomes on the call log: after hours, callback number

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 12:30:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('after_hours', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('callback_number', sa.String(length=32), server_default='', nullable=False))
        batch_op.create_index('ix_calls_topic_started', ['topic', 'started_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_index('ix_calls_topic_started')
        batch_op.drop_column('callback_number')
        batch_op.drop_column('after_hours')
