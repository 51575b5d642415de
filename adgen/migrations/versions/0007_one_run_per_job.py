"""One run per job and reviews never undone: creatives carry a version raised by every change
(optimistic concurrency between reviewers and against a late run of their job), jobs count the runs
lost with their worker, and a campaign records the in-process runner that holds it and until when.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creatives") as batch:
        batch.add_column(sa.Column("version", sa.Integer, nullable=False, server_default="1"))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lost", sa.Integer, nullable=False, server_default="0"))
    with op.batch_alter_table("campaigns") as batch:
        batch.add_column(sa.Column("runner", sa.String(200)))
        batch.add_column(sa.Column("runner_until", sa.DateTime))


def downgrade() -> None:
    with op.batch_alter_table("campaigns") as batch:
        batch.drop_column("runner_until")
        batch.drop_column("runner")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("lost")
    with op.batch_alter_table("creatives") as batch:
        batch.drop_column("version")
