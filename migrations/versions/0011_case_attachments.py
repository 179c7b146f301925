"""Files posted with case updates (photos, documents), kept by content digest

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 05:10:00
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade() -> None:
    op.create_table(
        'case_attachments',
        sa.Column('id', ID, nullable=False),
        sa.Column('case_id', ID, nullable=False),
        sa.Column('update_id', ID, nullable=False),
        sa.Column('name', sa.String(length=128), nullable=False),
        sa.Column('content_type', sa.String(length=64), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('sha256', sa.String(length=64), nullable=False),
        sa.Column('uploaded_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('uploaded_by', sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.ForeignKeyConstraint(['update_id'], ['case_updates.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_case_attachments_case_id', 'case_attachments', ['case_id'])


def downgrade() -> None:
    op.drop_index('ix_case_attachments_case_id', table_name='case_attachments')
    op.drop_table('case_attachments')
