"""add campaign_seeds.vector_model_sha256

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-28 04:44:36
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("campaign_seeds") as batch_op:
        batch_op.add_column(sa.Column("vector_model_sha256", sa.String(length=64), nullable=True))


def downgrade():
    # SQLite copies the table without the column (batch mode)
    with op.batch_alter_table("campaign_seeds") as batch_op:
        batch_op.drop_column("vector_model_sha256")
