"""The coordinator pages (`/inbox`): server-rendered HTML for the
coordinators of agencies that have no software of their own.

The gateway keeps no state of its own here either: sign-in links and
sessions belong to the agencies service, referrals to the referrals
service. The browser holds one cookie, signed with SESSION_SECRET: the
session's id, the CSRF secret and the chosen language.
"""

import datetime

from flask import Blueprint
from flask_wtf.csrf import CSRFProtect

blp = Blueprint(
    "inbox",
    __name__,
    url_prefix="/inbox",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

COOKIE_NAME = "inbox_session"


def init_app(app, settings):
    secret = settings.get("SESSION_SECRET")
    if not secret:
        raise RuntimeError(
            "SESSION_SECRET is not set: the coordinator pages need it to sign their cookies "
            "(`make run` makes and keeps one; set your own in production)."
        )
    app.secret_key = secret
    app.config.update(
        SESSION_COOKIE_NAME=COOKIE_NAME,
        SESSION_COOKIE_PATH="/inbox",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings["PUBLIC_URL"].startswith("https://"),
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(hours=12),
        # Every POST under /inbox is checked (pages.check_csrf), nothing else:
        # the /v1 API authenticates with keys, not cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=None,  # a token lives as long as the signed cookie that holds its secret
        # Strict mode wants a Referer on https, which Referrer-Policy: no-referrer withholds;
        # SameSite=Lax and the token already tie the form to this site.
        WTF_CSRF_SSL_STRICT=False,
    )
    CSRFProtect(app)
    i18n.init_app(app)
    app.jinja_env.filters["region_label"] = places.region_name
    app.extensions["sign_in_limits"] = limits.SignInLimits(settings, app.extensions["rate_limiter"].storage)
    errors.init_app(app)
    app.register_blueprint(blp)


from gateway.inbox import errors, i18n, limits, new_referral, pages, places, report, sign_in  # noqa: E402,F401  (routes)
