"""The monolith baseline: what a user might build instead of the network.
One Flask app under gunicorn (the gateway's worker and thread counts) that
checks the body with the very schema the network uses
(shared.contract.referrals.NewReferral) and inserts it into PostgreSQL with
SQLAlchemy + psycopg: no broker, no second service, no API key check.

Served as `gunicorn bench.monolith:app` with MONOLITH_DATABASE_URL set;
`create_table(url)` makes its table first.
"""

import os
import uuid

from flask import Flask, jsonify, request
from marshmallow import ValidationError
from sqlalchemy import Column, DateTime, MetaData, Sequence, Table, Text, func, insert
from sqlalchemy.dialects.postgresql import JSONB, UUID

from shared.config import sqlalchemy_url
from shared.contract.referrals import NewReferral

metadata = MetaData()
reference_numbers = Sequence("bench_reference_seq", metadata=metadata)
referrals = Table(
    "bench_referrals",
    metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("reference", Text, unique=True, nullable=False),
    Column("status", Text, nullable=False),
    Column("receiving_agency_id", UUID(as_uuid=True), nullable=False),
    Column("service_type", Text, nullable=False),
    Column("priority", Text, nullable=False),
    Column("reason", Text),
    Column("returnee", JSONB, nullable=False),
    Column("consent", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
schema = NewReferral()


def make_engine(url, threads):
    from sqlalchemy import create_engine

    return create_engine(sqlalchemy_url(url), pool_size=threads, max_overflow=0, pool_pre_ping=True)


def create_table(url):
    engine = make_engine(url, 1)
    metadata.create_all(engine)
    engine.dispose()


def create_app(url, threads):
    app = Flask(__name__)
    engine = make_engine(url, threads)

    @app.post("/v1/referrals")
    def create_referral():
        try:
            data = schema.load(request.get_json(force=True, silent=True) or {})
        except ValidationError as error:
            return jsonify(title="Unprocessable Content", status=422, errors=error.messages), 422
        body = schema.dump(data)  # JSON-ready: dates as strings
        row = {
            "id": uuid.uuid4(),
            "status": "sent",
            "receiving_agency_id": data["receiving_agency_id"],
            "service_type": body["service_type"],
            "priority": body["priority"],
            "reason": body["reason"],
            "returnee": body["returnee"],
            "consent": body["consent"],
        }
        with engine.begin() as conn:
            number = conn.scalar(reference_numbers.next_value())
            row["reference"] = f"REF-BENCH-{number:06d}"
            created_at = conn.execute(
                insert(referrals).values(row).returning(referrals.c.created_at)
            ).scalar_one()
        return jsonify(
            dict(
                body,
                id=str(row["id"]),
                reference=row["reference"],
                status="sent",
                created_at=created_at.isoformat(),
            )
        ), 201

    return app


if os.environ.get("MONOLITH_DATABASE_URL"):
    app = create_app(os.environ["MONOLITH_DATABASE_URL"], int(os.environ.get("GATEWAY_THREADS", "8")))
