"""Cases forwarded to departments: the cases, the calls linked to them, and every update

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 03:00:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        'cases',
        sa.Column('id', ID, nullable=False),
        sa.Column('number', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=16), nullable=False),
        sa.Column('topic', sa.String(length=64), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('location', sa.Text(), nullable=False),
        sa.Column('latitude', sa.Float(), nullable=True),
        sa.Column('longitude', sa.Float(), nullable=True),
        sa.Column('contact_name', sa.String(length=128), nullable=False),
        sa.Column('contact_phone', sa.String(length=32), nullable=False),
        sa.Column('contact_consent', sa.Boolean(), nullable=False),
        sa.Column('created_at', WHEN, nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('forwarded_at', WHEN, nullable=True),
        sa.Column('due_at', WHEN, nullable=True),
        sa.Column('updated_at', WHEN, nullable=False),
        sa.Column('closed_at', WHEN, nullable=True),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('number', name='uq_cases_number'),
    )
    op.create_index('ix_cases_status_due', 'cases', ['status', 'due_at'])
    op.create_index('ix_cases_department_status', 'cases', ['department', 'status'])
    op.create_index('ix_cases_created_at', 'cases', ['created_at'])
    op.create_table(
        'case_calls',
        sa.Column('id', ID, nullable=False),
        sa.Column('case_id', ID, nullable=False),
        sa.Column('call_id', ID, nullable=False),
        sa.Column('linked_at', WHEN, nullable=False),
        sa.Column('linked_by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.ForeignKeyConstraint(['call_id'], ['calls.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('case_id', 'call_id', name='uq_case_calls'),
    )
    op.create_index('ix_case_calls_case_id', 'case_calls', ['case_id'])
    op.create_index('ix_case_calls_call_id', 'case_calls', ['call_id'])
    op.create_table(
        'case_updates',
        sa.Column('id', ID, nullable=False),
        sa.Column('case_id', ID, nullable=False),
        sa.Column('at', WHEN, nullable=False),
        sa.Column('author', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('from_status', sa.String(length=16), nullable=False),
        sa.Column('to_status', sa.String(length=16), nullable=False),
        sa.Column('department', sa.String(length=64), nullable=False),
        sa.Column('text', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_updates_case_id', 'case_updates', ['case_id'])


def downgrade() -> None:
    op.drop_index('ix_case_updates_case_id', table_name='case_updates')
    op.drop_table('case_updates')
    op.drop_index('ix_case_calls_call_id', table_name='case_calls')
    op.drop_index('ix_case_calls_case_id', table_name='case_calls')
    op.drop_table('case_calls')
    op.drop_index('ix_cases_created_at', table_name='cases')
    op.drop_index('ix_cases_department_status', table_name='cases')
    op.drop_index('ix_cases_status_due', table_name='cases')
    op.drop_table('cases')
