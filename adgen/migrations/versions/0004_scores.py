"""Scores on every creative (the judge's overall 0-100 and its components) and the candidate copies
that best-of-N did not choose, kept on their job.

Revision ID: 0004
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creatives") as batch:
        batch.add_column(sa.Column("scores", sa.JSON))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("alternatives", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("alternatives")
    with op.batch_alter_table("creatives") as batch:
        batch.drop_column("scores")
