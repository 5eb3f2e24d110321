"""Paged lists, as every list call of the contract answers them."""

from marshmallow import Schema, fields, validate

MAX_PER_PAGE = 100
MAX_PAGE = 1_000_000  # keeps the offset well inside PostgreSQL's bigint


class PageQuery(Schema):
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_PAGE))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=MAX_PER_PAGE))
