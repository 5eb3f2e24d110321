"""The API's documentation at /docs: Swagger UI over /openapi.json, every
file of it served by the gateway itself (no CDN: the page works with no
internet and under the gateway's Content-Security-Policy, gateway/security.py).

- `GET /docs`: the page (templates/apidocs/index.html);
- `GET /docs/assets/<path>`: Swagger UI's own files, from the
  swagger-ui-bundle package (only those the page uses), cached for a year:
  their URLs carry Swagger UI's version;
- `GET /docs/static/<path>`: ours (static/apidocs/): init.js, which starts
  Swagger UI (a file, as the policy forbids inline scripts), and docs.css.

A plain Flask blueprint, not a flask-smorest one: the documentation is not an
operation of the API, so it stays out of the OpenAPI document.
"""

from flask import Blueprint, abort, render_template, send_from_directory
from swagger_ui_bundle import swagger_ui_path

SWAGGER_UI_VERSION = swagger_ui_path.name.removeprefix("swagger-ui-")  # "4.15.5"
ASSETS = frozenset({"swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "favicon-16x16.png"})
YEAR_SECONDS = 365 * 24 * 3600

blp = Blueprint(
    "apidocs",
    __name__,
    template_folder="templates",
    static_folder="static/apidocs",
    static_url_path="/docs/static",
)


@blp.get("/docs")
def page():
    return render_template("apidocs/index.html", swagger_ui_version=SWAGGER_UI_VERSION)


@blp.get("/docs/assets/<path:path>")
def asset(path):
    if path not in ASSETS:
        abort(404)
    response = send_from_directory(swagger_ui_path, path, max_age=YEAR_SECONDS)
    response.cache_control.public = True
    response.cache_control.immutable = True
    return response
