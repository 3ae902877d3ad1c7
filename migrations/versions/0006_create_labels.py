"""create labels

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28 00:00:05
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "labels",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("value IN ('accept', 'reject', 'unsure')",
                           name=op.f("ck_labels_label_value")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_labels_campaign_id_campaigns"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_labels_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("campaign_id", "object_id", "user_id",
                            name=op.f("uq_labels_campaign_id_object_id_user_id")),
    )
    op.create_index(op.f("ix_labels_campaign_id_user_id_object_id"), "labels",
                    ["campaign_id", "user_id", "object_id"])
    op.create_index(op.f("ix_labels_user_id"), "labels", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_labels_user_id"), table_name="labels")
    op.drop_index(op.f("ix_labels_campaign_id_user_id_object_id"), table_name="labels")
    op.drop_table("labels")
