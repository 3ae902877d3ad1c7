"""create label_history

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 00:00:06
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

VALUES = "('accept', 'reject', 'unsure')"


def upgrade():
    op.create_table(
        "label_history",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("object_id", sa.BigInteger(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column("old_value", sa.String(length=8), nullable=True),
        sa.Column("new_value", sa.String(length=8), nullable=True),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("undo_of_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("action IN ('create', 'change', 'delete')",
                           name=op.f("ck_label_history_label_action")),
        sa.CheckConstraint(f"old_value IN {VALUES}", name=op.f("ck_label_history_label_old_value")),
        sa.CheckConstraint(f"new_value IN {VALUES}", name=op.f("ck_label_history_label_new_value")),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_label_history_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"],
                                name=op.f("fk_label_history_user_id_users"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["undo_of_id"], ["label_history.id"],
                                name=op.f("fk_label_history_undo_of_id_label_history"),
                                ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_label_history")),
        sa.UniqueConstraint("undo_of_id", name=op.f("uq_label_history_undo_of_id")),
    )
    op.create_index(op.f("ix_label_history_campaign_id_user_id_id"), "label_history",
                    ["campaign_id", "user_id", "id"])
    op.create_index(op.f("ix_label_history_campaign_id_object_id"), "label_history",
                    ["campaign_id", "object_id"])
    op.create_index(op.f("ix_label_history_user_id"), "label_history", ["user_id"])


def downgrade():
    op.drop_index(op.f("ix_label_history_user_id"), table_name="label_history")
    op.drop_index(op.f("ix_label_history_campaign_id_object_id"), table_name="label_history")
    op.drop_index(op.f("ix_label_history_campaign_id_user_id_id"), table_name="label_history")
    op.drop_table("label_history")
