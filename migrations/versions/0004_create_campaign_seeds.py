"""create campaign_seeds

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:00:03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "campaign_seeds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=True),
        sa.Column("ra", sa.Float(), nullable=True),
        sa.Column("dec", sa.Float(), nullable=True),
        sa.Column("separation_arcsec", sa.Float(), nullable=True),
        sa.Column("vector", sa.LargeBinary(), nullable=True),
        sa.Column("note", sa.String(length=200), nullable=False),
        sa.Column("added_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('object', 'sky', 'vector')",
                           name=op.f("ck_campaign_seeds_seed_kind")),
        sa.CheckConstraint(
            "(kind != 'object' OR object_id IS NOT NULL)"
            " AND (kind != 'sky' OR (ra IS NOT NULL AND dec IS NOT NULL))"
            " AND (kind != 'vector' OR vector IS NOT NULL)",
            name=op.f("ck_campaign_seeds_kind_fields"),
        ),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_campaign_seeds_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["added_by_id"], ["users.id"],
                                name=op.f("fk_campaign_seeds_added_by_id_users"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_seeds")),
    )
    op.create_index(op.f("ix_campaign_seeds_campaign_id"), "campaign_seeds", ["campaign_id"])


def downgrade():
    op.drop_index(op.f("ix_campaign_seeds_campaign_id"), table_name="campaign_seeds")
    op.drop_table("campaign_seeds")
