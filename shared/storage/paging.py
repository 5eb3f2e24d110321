"""One page of a SELECT, with its total, as every list call of the contract answers."""

from sqlalchemy import func, select


def page_of(query, session, page, per_page, dump):
    """Run a SELECT `query` (already ordered) for one page, with its total."""
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.scalars(query.offset((page - 1) * per_page).limit(per_page)).all()
    return {"items": [dump(row) for row in rows], "page": page, "per_page": per_page, "total": total}
