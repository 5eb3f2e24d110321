"""The directory: /v1/agencies."""

from flask import request
from flask_smorest import Blueprint
from marshmallow import RAISE

from gateway.auth import authenticate, caller, require_admin
from gateway.calls import call
from gateway.docs import page_of, problems
from shared.contract.agencies import Agency, AgencyBody, AgencyChanges, AgencyQuery, ApiKey, NewApiKey

blp = Blueprint("agencies", __name__, url_prefix="/v1/agencies", description="The agency directory")
blp.before_request(authenticate)


@blp.route("", methods=["POST"])
@blp.arguments(AgencyBody)
@blp.alt_response(201, schema=Agency, success=True)
@problems(blp, 403)
def create_agency(_):
    """Add an agency to the directory (admin)."""
    require_admin()
    return call("agencies", "create_agency", request.get_json()), 201


@blp.route("", methods=["GET"])
@blp.arguments(AgencyQuery, location="query", as_kwargs=True, unknown=RAISE)
@blp.alt_response(200, schema=page_of(Agency), success=True)
def search_agencies(**filters):
    """Find agencies by service, region, language, whether they accept referrals, and name."""
    return call("agencies", "search_agencies", AgencyQuery().dump(filters))


@blp.route("/<uuid:agency_id>", methods=["GET"])
@blp.alt_response(200, schema=Agency, success=True)
def get_agency(agency_id):
    """One agency."""
    return call("agencies", "get_agency", str(agency_id))


@blp.route("/<uuid:agency_id>", methods=["PATCH"])
@blp.arguments(AgencyChanges)
@blp.alt_response(200, schema=Agency, success=True)
@problems(blp, 403)
def update_agency(_, agency_id):
    """Change an agency: admins change anything, an agency its own contacts,
    languages and whether it accepts referrals."""
    me = caller()
    if not me.is_admin and me.agency_id != str(agency_id):
        require_admin()
    return call("agencies", "update_agency", str(agency_id), request.get_json(), me.is_admin)


@blp.route("/<uuid:agency_id>/api-keys", methods=["POST"])
@blp.arguments(NewApiKey)
@blp.alt_response(201, schema=ApiKey, success=True, description="The key's only appearance in clear.")
@problems(blp, 403)
def issue_api_key(body, agency_id):
    """Issue an API key for the agency (admin)."""
    require_admin()
    return call("agencies", "issue_api_key", str(agency_id), body["role"]), 201


@blp.route("/<uuid:agency_id>/api-keys/<uuid:key_id>", methods=["DELETE"])
@blp.alt_response(204, success=True, description="Revoked.")
@problems(blp, 403)
def revoke_api_key(agency_id, key_id):
    """Revoke a key: it stops working at once (admin)."""
    require_admin()
    call("agencies", "revoke_api_key", str(agency_id), str(key_id))
    return "", 204
