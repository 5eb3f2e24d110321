"""The inbox and a referral's page, with the moves its coordinator may make."""

from flask import current_app, flash, g, redirect, render_template, request, session, url_for

from gateway.calls import call
from gateway.inbox import blp, coordinator, places, words
from gateway.inbox.i18n import LANGUAGE_NAMES, LANGUAGES, choose_language, current_language, gettext
from shared.contract.errors import Conflict, InvalidInput

# Pages anyone may open: the sign-in pages and the stylesheet.
PUBLIC_ENDPOINTS = {
    "inbox.sign_in_form",
    "inbox.ask_for_link",
    "inbox.sign_in_link",
    "inbox.use_link",
    "inbox.static",
}
PER_PAGE = 25
MOST_CHARACTERS = 4000  # of a move's text (shared.contract.referrals)


@blp.before_request
def check_request():
    """The language switch (?lang=), the CSRF token of every POST, then the
    coordinator's session for every page but the public ones."""
    if request.args.get("lang") in LANGUAGES:
        session["language"] = request.args["lang"]
    if request.method == "POST":
        current_app.extensions["csrf"].protect()  # 400 (errors.py) before anything is changed
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if coordinator.current() is None:
        return redirect(url_for("inbox.sign_in_form"), 303)
    g.language = choose_language(coordinator.current()["language"])
    return None


@blp.after_request
def keep_no_copy(response):
    """Pages show returnees' data: no cache (a shared one, or the browser's
    history after sign-out) keeps a copy. The stylesheet may be kept."""
    if request.endpoint != "inbox.static":
        response.headers["Cache-Control"] = "no-store"
    return response


@blp.app_context_processor
def page_values():
    if not (request.path == "/inbox" or request.path.startswith("/inbox/")):
        return {}
    return {
        "coordinator": g.get("coordinator"),
        "words": words,
        "language_links": _language_links(),
        "current_language": current_language(),
        "country_name": places.country_name,
        "region_name": places.region_name,
        "actor_label": actor_label,
        "choices": choices,
    }


def choices(labels):
    """[(value, translated label)] of one of `words`' mappings, for a select."""
    return [(value, gettext(label)) for value, label in labels.items()]


def actor_label(entry, names):
    """Who made a history entry, in words: the coordinator, the agency's
    own system (its API key's prefix) or the network itself."""
    actor = entry.get("actor") or {}
    agency = names.get(entry.get("agency_id"), "")
    if actor.get("type") == "system":
        return gettext("The network, automatically")
    if actor.get("type") == "coordinator":
        return gettext("%(name)s, %(agency)s", name=actor["name"], agency=agency)
    if actor.get("type") == "api_key":
        return gettext(
            "%(agency)s, through its own system (API key %(key)s…)", agency=agency, key=actor["name"]
        )
    return agency


def _language_links():
    """(code, name, URL) for the switcher: this very page in each language."""
    # url_for takes `_external`, `_method`, ... as its own: a query's own never reach it
    args = {key: value for key, value in request.args.items() if key != "lang" and not key.startswith("_")}
    endpoint = request.endpoint if request.method == "GET" and request.endpoint else "inbox.inbox"
    values = dict(request.view_args or {}) if endpoint == request.endpoint else {}
    if endpoint != request.endpoint:
        args = {}
    return [
        (code, LANGUAGE_NAMES[code], url_for(endpoint, **values, **args, lang=code)) for code in LANGUAGES
    ]


def _choice(name, choices):
    value = request.args.get(name, "")
    return value if value in choices else ""


@blp.get("")
def inbox():
    filters = {
        "status": _choice("status", words.STATUSES),
        "service_type": _choice("service_type", words.SERVICES),
        "box": _choice("box", ("received", "sent")),
    }
    page = request.args.get("page", "1")
    page = int(page) if page.isdigit() and 0 < int(page) < 10_000 else 1
    me = coordinator.current()
    query = {key: value for key, value in filters.items() if value}
    boxes = call(
        "referrals",
        "coordinator_inbox",
        me["agency_id"],
        dict(query, page=page, per_page=PER_PAGE),
        coordinator.actor(),
    )
    listed = boxes["received"]["items"] + boxes["sent"]["items"]
    names = agency_names(
        *(r["sending_agency_id"] for r in listed), *(r["receiving_agency_id"] for r in listed)
    )
    more = any(box["total"] > page * PER_PAGE for box in boxes.values())
    return render_template(
        "inbox/inbox.html", boxes=boxes, names=names, filters=filters, page=page, more=more, query=query
    )


def agency_names(*agency_ids):
    ids = sorted({str(agency_id) for agency_id in agency_ids if agency_id})
    return call("agencies", "agency_names", ids) if ids else {}


@blp.get("/referrals/<uuid:referral_id>")
def referral(referral_id):
    return _referral_page(referral_id)


def _referral_page(referral_id, status=200, failed_move=None, errors=None, typed=None):
    me = coordinator.current()
    case = call("referrals", "referral_with_history", me["agency_id"], str(referral_id), coordinator.actor())
    shown = case["referral"]
    names = agency_names(
        shown["sending_agency_id"],
        shown["receiving_agency_id"],
        *(entry["agency_id"] for entry in case["items"]),
    )
    side = "receiver" if shown["receiving_agency_id"] == me["agency_id"] else "sender"
    # the sender may erase the returnee's data in any status, once
    moves = case["moves"] + (["erase"] if side == "sender" and not shown.get("erased_at") else [])
    page = render_template(
        "inbox/referral.html",
        referral=shown,
        history=case["items"],
        moves=moves,
        names=names,
        side=side,
        failed_move=failed_move,
        errors=errors or {},
        typed=typed or {},
    )
    return page, status


@blp.post("/referrals/<uuid:referral_id>/<any(accept, decline, start, complete, cancel, erase):move>")
def make_move(referral_id, move):
    field = words.MOVE_TEXTS.get(move, (None,))[0]
    body = {field: request.form.get(field, "").strip()} if field else {}
    me = coordinator.current()
    try:
        if move == "erase":
            moved = call(
                "referrals", "erase_referral", me["agency_id"], str(referral_id), body, coordinator.actor()
            )
        else:
            moved = call(
                "referrals",
                "move_referral",
                me["agency_id"],
                str(referral_id),
                move,
                body,
                coordinator.actor(),
            )
    except InvalidInput:
        # the only field a move takes is its text: say so next to it, keep what was typed
        problem = (
            gettext("This text is too long: at most %(most)s characters.", most=MOST_CHARACTERS)
            if body[field]
            else gettext("Please write this text.")
        )
        return _referral_page(referral_id, 422, move, {field: problem}, body)
    except Conflict:
        flash(
            gettext(
                "This referral was changed by someone else before your answer arrived; "
                "here is how it stands now."
            ),
            "warning",
        )
        return redirect(url_for("inbox.referral", referral_id=referral_id), 303)
    flash(gettext(words.MOVE_DONE[move], reference=moved["reference"]), "success")
    return redirect(url_for("inbox.referral", referral_id=referral_id), 303)
