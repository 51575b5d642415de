"""The web app: advertiser accounts, the brands each may work on, and jobs that make one creative
again with a new seed.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(300), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "brand_access",
        sa.Column("user_id", sa.String(32), sa.ForeignKey("users.id"), primary_key=True),
        sa.Column("brand_id", sa.String(32), sa.ForeignKey("brands.id"), primary_key=True),
    )
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("replaces", sa.String(40)))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("replaces")
    op.drop_table("brand_access")
    op.drop_table("users")
