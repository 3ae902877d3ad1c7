"""create handouts

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-28 05:40:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "handouts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("handed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_handouts_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_handouts_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handouts")),
        sa.UniqueConstraint("campaign_id", "object_id", "user_id",
                            name=op.f("uq_handouts_campaign_id_object_id_user_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_handouts_campaign_id_user_id_id"), "handouts",
                    ["campaign_id", "user_id", "id"])
    op.create_index(op.f("ix_handouts_campaign_id_expires_at"), "handouts",
                    ["campaign_id", "expires_at"])
    op.create_index(op.f("ix_handouts_user_id"), "handouts", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_handouts_user_id"), table_name="handouts")
    op.drop_index(op.f("ix_handouts_campaign_id_expires_at"), table_name="handouts")
    op.drop_index(op.f("ix_handouts_campaign_id_user_id_id"), table_name="handouts")
    op.drop_table("handouts")
