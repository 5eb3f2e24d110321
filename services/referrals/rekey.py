"""Seal again, under the first of DATA_ENCRYPTION_KEYS, every value sealed
under another key: `python -m services.referrals.rekey`.

A rotation: put the new key first and keep the old one after it
(`DATA_ENCRYPTION_KEYS=new,old`) in every referrals process, run this while
the network runs, then drop the old key. It works in small transactions
of `--batch` rows, each locked with SKIP LOCKED, so that the service's moves
wait at most one batch; a row locked by someone else at that moment is left
for the next run, which finds only what is left, and says how many are.
Request digests (idempotency) cannot be sealed again: those under an old
key are counted, and are gone in 24 hours.
"""

import argparse
import sys
import uuid

from sqlalchemy import bindparam, text
from sqlalchemy.types import LargeBinary

from shared import config
from shared.storage.db import make_engine
from shared.storage.sealing import ID_BYTES, KeysNotValid, Sealer

# The sealed columns of each table (rows named by `id`).
SEALED = {
    "referrals": ("returnee", "consent", "reason", "outcome"),
    "referral_history": ("detail",),
}


def _under(column, ids):
    return f"substring({column} from 1 for {ID_BYTES}) = ANY(:{ids})"


def rekey_table(engine, sealer, table, columns, batch):
    """Seal again `table`'s rows under an older key, `batch` at a time: how many."""
    old_ids = [key_id for key_id in sealer.ciphers if key_id != sealer.current_id]
    if not old_ids:
        return 0
    stale = " OR ".join(_under(column, "old_ids") for column in columns)
    # in the order of the primary key, from where the last batch ended: one pass over the table in all
    pick = text(
        f"SELECT id, {', '.join(columns)} FROM {table} WHERE id > :after AND ({stale}) "
        f"ORDER BY id LIMIT :batch FOR UPDATE SKIP LOCKED"
    )
    update = text(
        f"UPDATE {table} SET " + ", ".join(f"{column} = :{column}" for column in columns) + " WHERE id = :id"
    ).bindparams(*(bindparam(column, type_=LargeBinary) for column in columns))
    done, after = 0, uuid.UUID(int=0)
    while True:
        with engine.begin() as connection:
            rows = connection.execute(pick, {"old_ids": old_ids, "batch": batch, "after": after}).all()
            if not rows:
                return done
            connection.execute(
                update,
                [
                    {"id": row.id, **{column: _current(sealer, getattr(row, column)) for column in columns}}
                    for row in rows
                ],
            )
        done, after = done + len(rows), rows[-1].id


def _current(sealer, sealed):
    return sealed if sealer.is_current(sealed) else sealer.reseal(sealed)


def left_behind(engine, sealer):
    """{what: count} of rows still under an old key (locked while this ran),
    under no key the setting holds, and of request digests under an old key."""
    old_ids = [key_id for key_id in sealer.ciphers if key_id != sealer.current_id]
    counts = {}
    with engine.connect() as connection:
        for table, columns in SEALED.items():
            stale = " OR ".join(_under(column, "old_ids") for column in columns)
            unknown = " OR ".join(f"NOT {_under(column, 'known')}" for column in columns)
            counts[f"{table} still under an old key (run again)"] = connection.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {stale}"), {"old_ids": old_ids}
            )
            counts[f"{table} under a key DATA_ENCRYPTION_KEYS does not hold"] = connection.scalar(
                text(f"SELECT count(*) FROM {table} WHERE {unknown}"), {"known": list(sealer.ciphers)}
            )
        counts["request digests under an old key (gone within 24 h)"] = connection.scalar(
            text(
                f"SELECT count(*) FROM idempotency_keys "
                f"WHERE substring(request_digest from 1 for {ID_BYTES}) <> :current"
            ),
            {"current": sealer.current_id},
        )
    return counts


def main(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--batch", type=int, default=200, help="rows per transaction (default 200)")
    args = parser.parse_args(argv)
    settings = config.load()
    try:
        sealer = Sealer.from_setting(settings["DATA_ENCRYPTION_KEYS"])
    except KeysNotValid as error:
        sys.exit(f"Nothing re-encrypted: {error}")
    engine = make_engine(settings["REFERRALS_DATABASE_URL"], pool_size=1)
    try:
        for table, columns in SEALED.items():
            print(
                f"{table}: {rekey_table(engine, sealer, table, columns, args.batch)} row(s) re-encrypted "
                f"under the first key",
                flush=True,
            )
        for what, count in left_behind(engine, sealer).items():
            if count:
                print(f"{what}: {count}", flush=True)
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
