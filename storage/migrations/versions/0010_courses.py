"""courses with dates: the course with its count of taken places, its sessions, and each person's place

Revision ID: 0010_courses
Revises: 0009_jobs
"""
import sqlalchemy as sa
from alembic import op

revision = "0010_courses"
down_revision = "0009_invoices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=480), nullable=False),
        sa.Column("location_id", sa.Integer(), sa.ForeignKey("location.id"), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("taken", sa.Integer(), nullable=False),
        sa.Column("price", sa.String(length=32), nullable=True),
        sa.Column("min_participants", sa.Integer(), nullable=True),
        sa.Column("booking_deadline_days", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=340), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("taken >= 0 AND taken <= capacity", name="course_places_within_capacity"),
        sa.UniqueConstraint("name"),
    )
    op.create_index("ix_course_name_key", "course", ["name_key"], unique=True)
    op.create_table(
        "course_session",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("course.id", ondelete="CASCADE"), nullable=False),
        sa.Column("start_at", sa.DateTime(), nullable=False),
        sa.Column("end_at", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_course_session_course_start", "course_session", ["course_id", "start_at"])
    op.create_table(
        "course_place",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("course_id", sa.Integer(), sa.ForeignKey("course.id", ondelete="CASCADE"), nullable=False),
        sa.Column("person_id", sa.Integer(), sa.ForeignKey("person.id", ondelete="CASCADE"), nullable=False),
        sa.Column("address", sa.String(length=340), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("hold_expires_at", sa.DateTime(), nullable=True),
        sa.Column("waiting_since", sa.DateTime(), nullable=True),
        sa.Column("channel", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("confirmed_at", sa.DateTime(), nullable=True),
        sa.UniqueConstraint("course_id", "person_id", name="uq_course_place_person"),
    )
    op.create_index("ix_course_place_person_id", "course_place", ["person_id"])
    op.create_index("ix_course_place_queue", "course_place", ["course_id", "status", "waiting_since"])


def downgrade() -> None:
    op.drop_index("ix_course_place_queue", table_name="course_place")
    op.drop_index("ix_course_place_person_id", table_name="course_place")
    op.drop_table("course_place")
    op.drop_index("ix_course_session_course_start", table_name="course_session")
    op.drop_table("course_session")
    op.drop_index("ix_course_name_key", table_name="course")
    op.drop_table("course")
