"""Turning marshmallow's verdicts into the errors the contract promises."""

from marshmallow import ValidationError

from shared.contract.errors import InvalidInput


def flatten_errors(messages, prefix=""):
    """marshmallow's nested messages as {"field.path": ["message", ...]}."""
    flat = {}
    for key, value in messages.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(flatten_errors(value, path))
        else:
            flat[path] = list(value) if isinstance(value, (list, tuple)) else [value]
    return flat


def load(schema, data, detail, **options):
    """`schema.load(data)`, or InvalidInput naming each field at fault."""
    if not isinstance(data, dict):
        raise InvalidInput(detail, {"_schema": ["A JSON object is required."]})
    try:
        return schema.load(data, **options)
    except ValidationError as error:
        raise InvalidInput(detail, flatten_errors(error.messages)) from None
