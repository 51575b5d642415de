"""Results from the ad platforms: one row per creative and reporting period of an imported export.

Revision ID: 0005
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "results",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("campaign_id", sa.String(32), sa.ForeignKey("campaigns.id"), nullable=False),
        sa.Column("creative_id", sa.String(40), sa.ForeignKey("creatives.id"), nullable=False),
        sa.Column("platform", sa.String(20), nullable=False),
        sa.Column("ad", sa.String(500), nullable=False),
        sa.Column("date_start", sa.Date, nullable=False),
        sa.Column("date_end", sa.Date, nullable=False),
        sa.Column("impressions", sa.Integer, nullable=False),
        sa.Column("clicks", sa.Integer, nullable=False),
        sa.Column("conversions", sa.Integer, nullable=False),
        sa.Column("spend", sa.Float),
        sa.Column("file_hash", sa.String(64), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
        sa.Column("imported_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_results_campaign_id", "results", ["campaign_id"])
    op.create_index("ix_results_creative_id", "results", ["creative_id"])
    op.create_index("ix_results_file_hash", "results", ["file_hash"])


def downgrade() -> None:
    op.drop_table("results")
