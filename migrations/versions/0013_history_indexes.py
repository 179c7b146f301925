"""Years of history: list indexes that also give the page order, numbers compared byte by byte, planner statistics

Every history filter has an index (filter, started_at, id) so the newest-first page is read in index order and
stops after one page (id is the tie-breaker of the order; without it PostgreSQL sorts every matching row). The
number search becomes a range (``>= '0912' AND < '0913'``): on PostgreSQL the column is collated "C" so that the
range equals ``LIKE '0912%'`` under any database locale, and the (caller_number, started_at) index serves it.
SQLite never gathered planner statistics: ANALYZE here (and ``migrate.upgrade`` refreshes them at each start).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 09:00:00
"""
import sqlalchemy as sa
from alembic import op


revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None

OLD = {'ix_calls_started_at': ['started_at'], 'ix_calls_caller_number': ['caller_number'],
       'ix_calls_line_started': ['line', 'started_at'], 'ix_calls_status_started': ['status', 'started_at'],
       'ix_calls_operator_started': ['operator', 'started_at'], 'ix_calls_topic_started': ['topic', 'started_at']}
NEW = {'ix_calls_started_id': ['started_at', 'id'], 'ix_calls_number_started': ['caller_number', 'started_at', 'id'],
       'ix_calls_line_started_id': ['line', 'started_at', 'id'],
       'ix_calls_status_started_id': ['status', 'started_at', 'id'],
       'ix_calls_operator_started_id': ['operator', 'started_at', 'id'],
       'ix_calls_topic_started_id': ['topic', 'started_at', 'id']}


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    for name in OLD:
        op.drop_index(name, table_name='calls')
    if postgres:
        op.alter_column('calls', 'caller_number', type_=sa.String(64, collation='C'), existing_nullable=False)
    for name, columns in NEW.items():
        op.create_index(name, 'calls', columns)
    op.execute('ANALYZE calls' if postgres else 'ANALYZE')


def downgrade() -> None:
    for name in NEW:
        op.drop_index(name, table_name='calls')
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('calls', 'caller_number', type_=sa.String(64), existing_nullable=False)
    for name, columns in OLD.items():
        op.create_index(name, 'calls', columns)
