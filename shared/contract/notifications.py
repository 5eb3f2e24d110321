"""The notification records as the contract shows them."""

from marshmallow import Schema, fields

from shared.contract import standards
from shared.contract.paging import PageQuery
from shared.contract.vocabulary import CHANNELS, NOTIFICATION_STATUSES


class Notification(Schema):
    id = fields.UUID()
    referral_id = fields.UUID()
    event = standards.Text()
    channel = standards.Text(validate=standards.one_of(CHANNELS))
    recipient = standards.Text()
    language = standards.Text()
    status = standards.Text(validate=standards.one_of(NOTIFICATION_STATUSES))
    attempts = fields.Integer()
    last_error = standards.Text(allow_none=True)
    created_at = fields.AwareDateTime()
    sent_at = fields.AwareDateTime(allow_none=True)


class NotificationQuery(PageQuery):
    referral_id = fields.UUID()
    status = standards.Text(validate=standards.one_of(NOTIFICATION_STATUSES))
