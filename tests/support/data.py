"""Bodies the tests send: valid by default, changed by keyword."""

import uuid


def contact(**overrides):
    body = {
        "name": "Leyla Aliyeva",
        "email": f"coordinator-{uuid.uuid4().hex[:8]}@example.org",
        "phone": "+994501234567",
        "language": "az",
        "channels": ["email"],
    }
    body.update(overrides)
    return body


def agency(**overrides):
    body = {
        "name": f"Agency {uuid.uuid4().hex[:8]}",
        "kind": "ngo",
        "services": ["housing", "employment"],
        "regions": ["AZ-BA"],
        "languages": ["az", "ru"],
        "accepting_referrals": True,
        "contacts": [contact()],
    }
    body.update(overrides)
    return body


def returnee(**overrides):
    body = {
        "given_name": "Aysel",
        "family_name": "Mammadova",
        "date_of_birth": "1990-04-12",
        "sex": "female",
        "phone": "+994552223344",
        "preferred_language": "az",
        "returned_from": "DE",
        "return_date": "2026-10-01",
        "region": "AZ-GA",
        "vulnerabilities": ["single parent"],
    }
    body.update(overrides)
    return body


def referral(receiving_agency_id, **overrides):
    body = {
        "receiving_agency_id": str(receiving_agency_id),
        "service_type": "housing",
        "priority": "normal",
        "reason": "Needs a place to live after return.",
        "returnee": returnee(),
        "consent": {"given": True, "obtained_at": "2026-10-02T09:00:00Z", "method": "written"},
    }
    body.update(overrides)
    return body


# What a message must never carry: the returnee's own data above.
PERSONAL_VALUES = ("Aysel", "Mammadova", "1990-04-12", "+994552223344", "single parent")
