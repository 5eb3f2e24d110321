"""Referrals and their lifecycle: /v1/referrals."""

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE

from gateway.auth import authenticate, caller, require_agency
from gateway.calls import call
from gateway.docs import page_of, problems
from shared.contract.paging import PageQuery
from shared.contract.referrals import (
    AccessItem,
    Cancel,
    Complete,
    Decline,
    Erase,
    History,
    NewReferral,
    NoBody,
    Referral,
    ReferralQuery,
    idempotency_key,
)

blp = Blueprint(
    "referrals", __name__, url_prefix="/v1/referrals", description="Referrals of returnees between agencies"
)
blp.before_request(authenticate)
blp.before_request(require_agency)  # admin keys do not read returnees' personal data


@blp.route("", methods=["POST"])
@blp.arguments(NewReferral)
@blp.doc(
    parameters=[
        {
            "in": "header",
            "name": "Idempotency-Key",
            "required": False,
            "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[\\x20-\\x7e]+$"},
            "description": "The same key and body within 24 h answers the first result again.",
        }
    ]
)
@blp.alt_response(201, schema=Referral, success=True)
@problems(blp, 403, 409)
def create_referral(_):
    """Refer a returnee to another agency for a service."""
    key = idempotency_key(request.headers.get("Idempotency-Key"))
    me = caller()
    return call("referrals", "create_referral", me.agency_id, request.get_json(), key, me.actor), 201


@blp.route("", methods=["GET"])
@blp.arguments(ReferralQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(Referral), success=True)
@problems(blp, 403)
def list_referrals(**filters):
    """The caller's referrals, sent and received, newest first."""
    return call(
        "referrals", "list_referrals", caller().agency_id, ReferralQuery().dump(filters), caller().actor
    )


@blp.route("/<uuid:referral_id>", methods=["GET"])
@blp.alt_response(200, schema=Referral, success=True)
@problems(blp, 403)
def get_referral(referral_id):
    """One referral, for its sender or receiver."""
    return call("referrals", "get_referral", caller().agency_id, str(referral_id), caller().actor)


@blp.route("/<uuid:referral_id>/history", methods=["GET"])
@blp.alt_response(200, schema=History, success=True)
@problems(blp, 403)
def referral_history(referral_id):
    """Every move of the referral, oldest first."""
    return call("referrals", "referral_history", caller().agency_id, str(referral_id), caller().actor)


def _move_view(move, body_schema, party):
    @blp.arguments(body_schema, required=body_schema is not NoBody)
    @blp.alt_response(200, schema=Referral, success=True)
    @problems(blp, 403, 409)
    def view(_, referral_id):
        return call(
            "referrals",
            "move_referral",
            caller().agency_id,
            str(referral_id),
            move,
            request.get_json(silent=True) or {},
            caller().actor,
        )

    view.__name__ = f"{move}_referral"
    view.__doc__ = f"{move.capitalize()} the referral (its {party})."
    blp.route(f"/<uuid:referral_id>/{move}", methods=["POST"])(view)


for _move, _schema, _party in (
    ("accept", NoBody, "receiver"),
    ("decline", Decline, "receiver"),
    ("start", NoBody, "receiver"),
    ("complete", Complete, "receiver"),
    ("cancel", Cancel, "sender"),
):
    _move_view(_move, _schema, _party)


@blp.route("/<uuid:referral_id>/erase", methods=["POST"])
@blp.arguments(Erase)
@blp.alt_response(200, schema=Referral, success=True)
@problems(blp, 403)
def erase_referral(_, referral_id):
    """Erase the returnee's data and every free text of the referral, in
    any status (its sender); erasing it again answers the same."""
    return call(
        "referrals",
        "erase_referral",
        caller().agency_id,
        str(referral_id),
        request.get_json(silent=True) or {},
        caller().actor,
    )


@blp.route("/<uuid:referral_id>/access-log", methods=["GET"])
@blp.arguments(PageQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(AccessItem), success=True)
@problems(blp, 403)
def referral_access_log(referral_id, **query):
    """Every read and change of the referral, oldest first (its sender)."""
    return call(
        "referrals", "referral_access_log", caller().agency_id, str(referral_id), PageQuery().dump(query)
    )
