"""Sign-in by e-mailed one-time link, and sign-out.

The address form answers the same whether or not the address is a
coordinator's. The link's page only shows a button: a mail scanner that
fetches the link spends nothing; the button's POST does. Neither the link
nor the session id is ever logged (gateway.access_log hides the link).
"""

from flask import current_app, redirect, render_template, request, url_for

from gateway.calls import call
from gateway.inbox import blp, coordinator
from gateway.inbox.i18n import gettext
from shared.contract import standards
from shared.contract.digests import digest


@blp.get("/sign-in")
def sign_in_form():
    if coordinator.current() is not None:
        return redirect(url_for("inbox.inbox"), 303)
    return render_template("inbox/sign_in.html", email="", errors={})


@blp.post("/sign-in")
def ask_for_link():
    email = request.form.get("email", "").strip()
    if not _is_address(email):
        return render_template(
            "inbox/sign_in.html",
            email=email,
            errors={"email": gettext("Please write an e-mail address, like name@example.org.")},
        ), 422
    wait = current_app.extensions["sign_in_limits"].retry_after(email, request.remote_addr or "unknown")
    if wait is not None:
        page = render_template(
            "inbox/problem.html",
            status=429,
            title=gettext("Too many sign-in requests"),
            detail=gettext("Please try again in %(minutes)s minute(s).", minutes=max(1, round(wait / 60))),
        )
        return page, 429, {"Retry-After": str(wait)}
    call("agencies", "request_sign_in", email)
    return render_template("inbox/sign_in.html", email="", errors={}, asked=True)


def _is_address(email):
    if not email or len(email) > 320:
        return False
    try:
        standards.email_address(email)
    except Exception:
        return False
    return True


@blp.get("/sign-in/<token>")
def sign_in_link(token):
    if not call("agencies", "sign_in_link_is_live", digest(token)):
        return render_template("inbox/sign_in_invalid.html"), 400
    return render_template("inbox/sign_in_link.html", token=token)


@blp.post("/sign-in/<token>")
def use_link(token):
    session_id = coordinator.new_session_id()
    opened = call("agencies", "sign_in", digest(token), digest(session_id))
    if opened is None:
        return render_template("inbox/sign_in_invalid.html"), 400
    coordinator.begin(session_id, opened["coordinator"])
    return redirect(url_for("inbox.inbox"), 303)


@blp.post("/sign-out")
def sign_out():
    coordinator.end()
    return redirect(url_for("inbox.sign_in_form", signed_out=1), 303)
