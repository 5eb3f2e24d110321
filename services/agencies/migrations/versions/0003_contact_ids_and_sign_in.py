"""contact ids, coordinators' sign-in links and sessions

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 22:00:00

"""
from typing import Sequence, Union

import sqlalchemy as sa
from alembic import op

revision: str = '0003'
down_revision: Union[str, Sequence[str], None] = '0002'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Every existing contact gets a stable id of its own.
    op.execute("""
        UPDATE agencies SET contacts = (
            SELECT coalesce(jsonb_agg(CASE WHEN contact ? 'id' THEN contact
                                           ELSE contact || jsonb_build_object('id', gen_random_uuid()) END
                                      ORDER BY position), '[]'::jsonb)
            FROM jsonb_array_elements(contacts) WITH ORDINALITY AS element(contact, position))
        WHERE jsonb_array_length(contacts) > 0
    """)
    op.create_table(
        'sign_in_tokens',
        sa.Column('digest', sa.Text(), nullable=False),
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('contact_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'], name=op.f('fk_sign_in_tokens_agency_id_agencies'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_sign_in_tokens')),
    )
    op.create_index(op.f('ix_sign_in_tokens_agency_id'), 'sign_in_tokens', ['agency_id'])
    op.create_index(op.f('ix_sign_in_tokens_contact_id'), 'sign_in_tokens', ['contact_id'])
    op.create_table(
        'coordinator_sessions',
        sa.Column('digest', sa.Text(), nullable=False),
        sa.Column('agency_id', sa.Uuid(), nullable=False),
        sa.Column('contact_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['agency_id'], ['agencies.id'],
                                name=op.f('fk_coordinator_sessions_agency_id_agencies'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('digest', name=op.f('pk_coordinator_sessions')),
    )
    op.create_index(op.f('ix_coordinator_sessions_agency_id'), 'coordinator_sessions', ['agency_id'])
    op.create_index(op.f('ix_coordinator_sessions_contact_id'), 'coordinator_sessions', ['contact_id'])


def downgrade() -> None:
    op.drop_table('coordinator_sessions')
    op.drop_table('sign_in_tokens')
    op.execute("""
        UPDATE agencies SET contacts = (
            SELECT coalesce(jsonb_agg(contact - 'id' ORDER BY position), '[]'::jsonb)
            FROM jsonb_array_elements(contacts) WITH ORDINALITY AS element(contact, position))
    """)
