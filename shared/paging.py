"""Paged lists, as every list call of the contract answers them."""
from marshmallow import Schema, fields, validate
from sqlalchemy import func, select

MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000  # keeps the offset well inside PostgreSQL's bigint


class PageQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))


def page_of(query, session, page, per_page, dump):
    """Run a SELECT `query` (already ordered) for one page, with its total."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [dump(row) for row in rows], "page": page, "per_page": per_page, "total": total}
