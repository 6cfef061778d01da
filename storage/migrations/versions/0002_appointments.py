"""appointments, slot claims, closures, customer notes and groups

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 22:57:31.432008
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('customer_group',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=120), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('appointment',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('service_id', sa.Integer(), nullable=False),
    sa.Column('location_id', sa.Integer(), nullable=True),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('start_at', sa.DateTime(), nullable=False),
    sa.Column('end_at', sa.DateTime(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('hold_expires_at', sa.DateTime(), nullable=True),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_by', sa.String(length=340), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('closed_by', sa.String(length=340), nullable=True),
    sa.Column('closed_reason', sa.Text(), nullable=True),
    sa.Column('closed_at', sa.DateTime(), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['customer_id'], ['person.id'], ),
    sa.ForeignKeyConstraint(['location_id'], ['location.id'], ),
    sa.ForeignKeyConstraint(['service_id'], ['service.id'], ),
    sa.ForeignKeyConstraint(['staff_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.create_index('ix_appointment_customer_start', ['customer_id', 'start_at'], unique=False)
        batch_op.create_index('ix_appointment_staff_start', ['staff_id', 'start_at'], unique=False)
        batch_op.create_index('ix_appointment_status_hold', ['status', 'hold_expires_at'], unique=False)

    op.create_table('closure',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('start_at', sa.DateTime(), nullable=False),
    sa.Column('end_at', sa.DateTime(), nullable=False),
    sa.Column('created_by', sa.String(length=340), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['staff_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_closure_staff_id'), ['staff_id'], unique=False)

    op.create_table('customer_group_member',
    sa.Column('group_id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['group_id'], ['customer_group.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('group_id', 'person_id')
    )
    op.create_table('customer_note',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('author', sa.String(length=340), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('customer_note', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_customer_note_person_id'), ['person_id'], unique=False)

    op.create_table('profile_change',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('person_id', sa.Integer(), nullable=False),
    sa.Column('field', sa.String(length=16), nullable=False),
    sa.Column('old_value', sa.String(length=340), nullable=True),
    sa.Column('new_value', sa.String(length=340), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.Column('decided_by', sa.String(length=340), nullable=True),
    sa.ForeignKeyConstraint(['person_id'], ['person.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('profile_change', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_profile_change_person_id'), ['person_id'], unique=False)

    op.create_table('slot_claim',
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('cell', sa.DateTime(), nullable=False),
    sa.Column('appointment_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['appointment_id'], ['appointment.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['staff_id'], ['person.id'], ),
    sa.PrimaryKeyConstraint('staff_id', 'cell')
    )
    with op.batch_alter_table('slot_claim', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_slot_claim_appointment_id'), ['appointment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('slot_claim', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_slot_claim_appointment_id'))

    op.drop_table('slot_claim')
    with op.batch_alter_table('profile_change', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_profile_change_person_id'))

    op.drop_table('profile_change')
    with op.batch_alter_table('customer_note', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_customer_note_person_id'))

    op.drop_table('customer_note')
    op.drop_table('customer_group_member')
    with op.batch_alter_table('closure', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_closure_staff_id'))

    op.drop_table('closure')
    with op.batch_alter_table('appointment', schema=None) as batch_op:
        batch_op.drop_index('ix_appointment_status_hold')
        batch_op.drop_index('ix_appointment_staff_start')
        batch_op.drop_index('ix_appointment_customer_start')

    op.drop_table('appointment')
    op.drop_table('customer_group')
