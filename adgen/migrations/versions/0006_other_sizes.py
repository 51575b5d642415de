"""Creatives keep their placement's other sizes: "WxH" -> storage key of each `also` size, laid out
in the job from the same background as the primary image (null for text-only creatives and for
creatives made before; their export lays the other sizes out from the stored background).

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("creatives") as batch:
        batch.add_column(sa.Column("other_sizes", sa.JSON))


def downgrade() -> None:
    with op.batch_alter_table("creatives") as batch:
        batch.drop_column("other_sizes")
