"""recordings worker fields, legal hold, recording access audit

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 11:54:51.019546
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('recording_access',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('recording_id', sa.BigInteger(), nullable=True),
    sa.Column('call_id', sa.BigInteger(), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('status_code', sa.Integer(), nullable=False),
    sa.Column('actor', sa.String(length=128), nullable=False),
    sa.Column('client', sa.String(length=64), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('recording_access', schema=None) as batch_op:
        batch_op.create_index('ix_recording_access_at', ['at'], unique=False)
        batch_op.create_index(batch_op.f('ix_recording_access_recording_id'), ['recording_id'], unique=False)

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.add_column(sa.Column('legal_hold', sa.Boolean(), server_default=sa.false(), nullable=False))

    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('uniqueid', sa.String(length=64), server_default='', nullable=False))
        batch_op.add_column(sa.Column('kind', sa.String(length=16), server_default='conversation', nullable=False))
        batch_op.add_column(sa.Column('attempts', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_recordings_status_next', ['status', 'next_attempt_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('recordings', schema=None) as batch_op:
        batch_op.drop_index('ix_recordings_status_next')
        batch_op.drop_column('recorded_at')
        batch_op.drop_column('next_attempt_at')
        batch_op.drop_column('attempts')
        batch_op.drop_column('kind')
        batch_op.drop_column('uniqueid')

    with op.batch_alter_table('calls', schema=None) as batch_op:
        batch_op.drop_column('legal_hold')

    with op.batch_alter_table('recording_access', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recording_access_recording_id'))
        batch_op.drop_index('ix_recording_access_at')

    op.drop_table('recording_access')
