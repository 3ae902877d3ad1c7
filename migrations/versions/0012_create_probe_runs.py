"""create probe_runs

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-28 05:33:40
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade():
    op.create_table(
        "probe_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("bundle_sha256", sa.String(length=64), nullable=False),
        sa.Column("representation", sa.String(length=64), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("coef", sa.LargeBinary(), nullable=False),
        sa.Column("intercept", sa.Float(), nullable=False),
        sa.Column("C", sa.Float(), nullable=False),
        sa.Column("label_watermark", sa.BigInteger(), nullable=False),
        sa.Column("n_positive", sa.Integer(), nullable=False),
        sa.Column("n_negative", sa.Integer(), nullable=False),
        sa.Column("n_unlabeled", sa.Integer(), nullable=False),
        sa.Column("unlabeled_weight", sa.Float(), nullable=False),
        sa.Column("metrics", JSON, nullable=False),
        sa.Column("timings", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["campaign_id"], ["campaigns.id"],
                                name=op.f("fk_probe_runs_campaign_id_campaigns"),
                                ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], name=op.f("fk_probe_runs_job_id_jobs"),
                                ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_runs")),
        sa.UniqueConstraint("campaign_id", "version",
                            name=op.f("uq_probe_runs_campaign_id_version")),
    )
    op.create_index(op.f("ix_probe_runs_job_id"), "probe_runs", ["job_id"])


def downgrade():
    op.drop_index(op.f("ix_probe_runs_job_id"), table_name="probe_runs")
    op.drop_table("probe_runs")
