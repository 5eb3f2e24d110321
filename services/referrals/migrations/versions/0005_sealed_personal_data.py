"""the returnee's personal data sealed at rest (AES-GCM)

Revision ID: 0005
Revises: 0004

`referrals.returnee` becomes the sealed returnee (bytea) but for its region
and preferred language, which move to `returnee_region` and
`returnee_language` in clear (reports group by them, erasure keeps them).
`referrals.consent`, `referrals.reason`, `referrals.outcome` and
`referral_history.detail` become sealed bytea; `idempotency_keys.request_digest`
an HMAC of the SHA-256 it held (shared.storage.sealing says how). Rows
written before are sealed here, under the first of DATA_ENCRYPTION_KEYS:
without it, and with rows to seal, the migration refuses. `returnee` and
`consent` may now be NULL: erased. History entries stay append-only but
for their detail, which a key rotation seals again (and erasure empties).

The downgrade opens them again into clear columns (it needs the keys too);
request digests cannot be undone, so it deletes the idempotency records
(each lasts 24 hours).
"""
import sqlalchemy as sa
from alembic import context, op
from sqlalchemy.dialects.postgresql import JSONB

from shared.storage.sealing import SETTING, KeysNotValid, Sealer
from shared.storage.migrate import MigrationRefused

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

BATCH = 1000
CLEAR_RETURNEE_FIELDS = {"region": "returnee_region", "preferred_language": "returnee_language"}


# History entries refuse every change but one to their detail alone.
HISTORY_DETAIL_ONLY = """
CREATE FUNCTION refuse_history_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND to_jsonb(NEW) - 'detail' = to_jsonb(OLD) - 'detail' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% is append-only (only an entry''s detail may be sealed again or erased)', TG_TABLE_NAME;
END;
$$
"""


def upgrade() -> None:
    op.execute(HISTORY_DETAIL_ONLY)
    op.execute("DROP TRIGGER referral_history_append_only ON referral_history")
    op.execute("CREATE TRIGGER referral_history_append_only BEFORE UPDATE OR DELETE ON referral_history "
               "FOR EACH ROW EXECUTE FUNCTION refuse_history_change()")
    op.add_column("referrals", sa.Column("returnee_region", sa.Text(), nullable=True))
    op.add_column("referrals", sa.Column("returnee_language", sa.Text(), nullable=True))
    op.execute("UPDATE referrals SET returnee_region = returnee->>'region', "
               "returnee_language = returnee->>'preferred_language'")
    op.alter_column("referrals", "returnee_region", nullable=False)
    sealer = _sealer(needed=_has_rows())
    _rewrite("referrals", ["id"], sa.LargeBinary(), {
        "returnee": lambda returnee: sealer.seal_json(
            {field: value for field, value in returnee.items() if field not in CLEAR_RETURNEE_FIELDS}),
        "consent": sealer and sealer.seal_json,
        "reason": sealer and sealer.seal_text,
        "outcome": sealer and sealer.seal_text,
    })
    _rewrite("referral_history", ["id"], sa.LargeBinary(), {"detail": sealer and sealer.seal_text})
    _rewrite("idempotency_keys", ["agency_id", "key"], sa.LargeBinary(),
             {"request_digest": sealer and sealer.digest})
    op.alter_column("idempotency_keys", "request_digest", nullable=False)


def downgrade() -> None:
    op.execute("DELETE FROM idempotency_keys")
    op.alter_column("idempotency_keys", "request_digest", type_=sa.Text(), postgresql_using="NULL")
    sealer = _sealer(needed=_has_rows())
    _rewrite("referral_history", ["id"], sa.Text(), {"detail": sealer and sealer.open_text})
    _rewrite("referrals", ["id"], sa.Text(), {"reason": sealer and sealer.open_text,
                                              "outcome": sealer and sealer.open_text})
    _rewrite("referrals", ["id"], JSONB(), {"returnee": sealer and sealer.open_json,
                                            "consent": sealer and sealer.open_json})
    # An erased referral (returnee null) keeps its region and language; its
    # consent stays null (the column stays nullable, as 0006's downgrade leaves it).
    op.execute("UPDATE referrals SET returnee = coalesce(nullif(returnee, 'null'::jsonb), '{}'::jsonb) "
               "|| jsonb_build_object('region', returnee_region, 'preferred_language', returnee_language)")
    op.drop_column("referrals", "returnee_language")
    op.drop_column("referrals", "returnee_region")
    op.alter_column("referrals", "returnee", nullable=False)
    op.execute("DROP TRIGGER referral_history_append_only ON referral_history")
    op.execute("CREATE TRIGGER referral_history_append_only BEFORE UPDATE OR DELETE ON referral_history "
               "FOR EACH ROW EXECUTE FUNCTION refuse_audit_change()")
    op.execute("DROP FUNCTION refuse_history_change()")


def _has_rows():
    return op.get_bind().execute(sa.text(
        "SELECT EXISTS (SELECT FROM referrals) OR EXISTS (SELECT FROM idempotency_keys)")).scalar()


def _sealer(needed):
    """The Sealer of the settings' keys; None when there is nothing to
    seal or open and no keys."""
    settings = context.config.attributes.get("settings") or {}
    try:
        return Sealer.from_setting(settings.get(SETTING))
    except KeysNotValid as error:
        if not needed:
            return None
        raise MigrationRefused(
            f"The referrals database holds returnees' personal data in clear, and its migration 0005 "
            f"encrypts it: {error}") from None


def _rewrite(table, keys, new_type, changes):
    """Each column of `changes` ({column: how}) of `table` (rows named by
    `keys`) made `new_type`, its values (NULL stays NULL) passed through
    `how`, in batches."""
    bind = op.get_bind()
    for column in changes:
        op.alter_column(table, column, new_column_name=f"{column}_before")
        op.add_column(table, sa.Column(column, new_type, nullable=True))
    before = ", ".join(f"{column}_before" for column in changes)
    order = ", ".join(keys)
    update = sa.text(
        f"UPDATE {table} SET " + ", ".join(f"{column} = :{column}" for column in changes)
        + " WHERE " + " AND ".join(f"{key} = :key_{key}" for key in keys)
    ).bindparams(*(sa.bindparam(column, type_=new_type) for column in changes))
    last = None
    while True:
        after = f"WHERE ({order}) > ({', '.join(f':key_{key}' for key in keys)})" if last else ""
        rows = bind.execute(sa.text(f"SELECT {order}, {before} FROM {table} {after} ORDER BY {order} LIMIT {BATCH}"),
                            last or {}).all()
        if not rows:
            break
        bind.execute(update, [
            {**{f"key_{key}": value for key, value in zip(keys, row[:len(keys)])},
             **{column: None if value is None else how(value)
                for (column, how), value in zip(changes.items(), row[len(keys):])}}
            for row in rows
        ])
        last = {f"key_{key}": value for key, value in zip(keys, rows[-1][:len(keys)])}
    for column in changes:
        op.drop_column(table, f"{column}_before")

