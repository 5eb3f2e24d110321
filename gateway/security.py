"""Security headers on every answer of the gateway.

One Content-Security-Policy for every page: scripts, styles, images and
fonts only from the gateway itself (no CDN, no inline script), no framing,
forms posted only back here. `Referrer-Policy: no-referrer` keeps a
referral's address out of any Referer header. A view that needs another
policy sets its own header; these are only defaults.
"""

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


def init_app(app):
    app.after_request(_add_headers)


def _add_headers(response):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response
