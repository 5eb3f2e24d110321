"""Security headers on every answer of the gateway.

One Content-Security-Policy for every page: scripts, styles, images and
fonts only from the gateway itself (no CDN, no inline script), no framing,
forms posted only back here. `Referrer-Policy: no-referrer` keeps a
referral's address out of any Referer header. A view that needs another
policy sets its own header; these are only defaults.

Every `/v1` answer may carry personal data, so none is kept by a cache
(`Cache-Control: no-store`); with an https PUBLIC_URL, browsers are told to
come back over https only (HSTS).
"""

from flask import request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


API_CACHE_CONTROL = "no-store"
STRICT_TRANSPORT_SECURITY = "max-age=31536000"  # a year, as the HSTS preload list asks at least


def init_app(app, public_url):
    headers = dict(HEADERS)
    if public_url.startswith("https://"):
        headers["Strict-Transport-Security"] = STRICT_TRANSPORT_SECURITY

    @app.after_request
    def add_headers(response):
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        if request.path == "/v1" or request.path.startswith("/v1/"):
            response.headers["Cache-Control"] = API_CACHE_CONTROL
        return response
