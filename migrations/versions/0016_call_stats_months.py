"""Month rows in the statistics summary: per UTC month and line, the counts in all, per topic and per first
operator (callcenter/store/summary.py), so that statistics over a year read whole UTC months from ~12 rows per
member instead of ~365 day rows.

The month rows are added up from the day rows already there (which count every call once per dimension), one
INSERT ... SELECT ... GROUP BY per dimension; grain 'mon' (the column holds 4 characters), period the month's
first hour since 1970. The SQL is a frozen copy of what the code had at this revision; a test checks that this
backfill equals the table the writer keeps.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30 06:20:00
"""
from alembic import op


revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

EDGES = (0, 5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 70, 80, 90, 100, 110, 120, 150, 180, 210, 240, 270, 300,
         360, 420, 480, 540, 600, 900, 1200, 1800, 3600)
COUNTS = ['calls', 'answered', 'abandoned', 'missed', 'wait_n', 'wait_ms', 'talk_n', 'talk_ms',
          *(f'wait_{edge}' for edge in EDGES)]


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == 'postgresql'
    if postgres:
        month = ("CAST(extract(epoch FROM date_trunc('month', to_timestamp(period * 3600) AT TIME ZONE 'UTC')) "
                 "AS INTEGER) / 3600")
    else:
        month = "CAST(strftime('%s', period * 3600, 'unixepoch', 'start of month') AS INTEGER) / 3600"
    columns = ', '.join(['grain', 'dimension', 'period', 'line', 'member', *COUNTS])
    sums = ', '.join(f'SUM({name})' for name in COUNTS)
    op.execute("DELETE FROM call_stats WHERE grain = 'mon'")
    for dimension in ('line', 'topic', 'operator'):
        op.execute(f"INSERT INTO call_stats ({columns}) SELECT 'mon', dimension, {month}, line, member, {sums} "
                   f"FROM call_stats WHERE grain = 'day' AND dimension = '{dimension}' "
                   f"GROUP BY dimension, {month}, line, member")
    op.execute('ANALYZE call_stats' if postgres else 'ANALYZE')


def downgrade() -> None:
    op.execute("DELETE FROM call_stats WHERE grain = 'mon'")
