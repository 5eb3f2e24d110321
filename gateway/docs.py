"""Schemas that exist only to describe answers in the OpenAPI document."""
from marshmallow import Schema, fields


class Problem(Schema):
    type = fields.String()
    title = fields.String()
    status = fields.Integer()
    detail = fields.String()
    errors = fields.Dict(keys=fields.String(), values=fields.List(fields.String()))


def page_of(item_schema):
    """The schema of a page of `item_schema` items."""
    return type(
        f"{item_schema.__name__}Page",
        (Schema,),
        {
            "items": fields.List(fields.Nested(item_schema)),
            "page": fields.Integer(),
            "per_page": fields.Integer(),
            "total": fields.Integer(),
        },
    )
