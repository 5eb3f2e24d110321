"""/docs: Swagger UI served by the gateway itself (no CDN), under the
gateway's own Content-Security-Policy. The page in a real browser:
tests/browser/test_apidocs.py."""

from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest

from gateway import apidocs, security

YEAR = 365 * 24 * 3600


class Page(HTMLParser):
    """The tags of a page: [(tag, {attribute: value}), ...], and the text of
    its inline scripts and styles."""

    def __init__(self, text):
        super().__init__()
        self.tags, self.inline = [], []
        self._inside = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.append((tag, attributes))
        if tag == "style" or (tag == "script" and "src" not in attributes):
            self._inside = tag

    def handle_endtag(self, tag):
        self._inside = None

    def handle_data(self, data):
        if self._inside:
            self.inline.append((self._inside, data))

    def find(self, tag):
        return [attributes for name, attributes in self.tags if name == tag]

    def urls(self):
        return [
            value
            for _, attributes in self.tags
            for name, value in attributes.items()
            if name in ("src", "href", "data-openapi-url")
        ]


@pytest.fixture
def http(make_app):
    """A gateway as the other tests here have it (the docs need no service)."""
    return make_app().test_client()


@pytest.fixture
def docs(http):
    answer = http.get("/docs")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer


def test_the_page_is_html_in_english_with_a_title_and_a_main_landmark(docs):
    assert docs.mimetype == "text/html"
    page = Page(docs.get_data(as_text=True))
    assert page.find("html") == [{"lang": "en"}]
    assert "Returnee referral network" in docs.get_data(as_text=True).split("<title>")[1].split("</title>")[0]
    assert len(page.find("main")) == 1
    assert len(page.find("h1")) == 1


def test_the_page_runs_under_the_gateways_own_policy_with_nothing_inline(docs):
    assert docs.headers["Content-Security-Policy"] == security.CONTENT_SECURITY_POLICY
    page = Page(docs.get_data(as_text=True))
    assert page.inline == []  # no inline script or style element
    assert [attributes for _, attributes in page.tags if "style" in attributes] == []
    assert not any(name.startswith("on") for _, attributes in page.tags for name in attributes)


def test_everything_the_page_refers_to_is_on_the_gateway_and_served(http, docs):
    page = Page(docs.get_data(as_text=True))
    urls = page.urls()
    assert urls
    for url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc and url.startswith("/"), f"{url} is on another origin"
        assert http.get(url).status_code == 200, url
    scripts = [attributes["src"] for attributes in page.find("script")]
    assert [urlsplit(src).path for src in scripts] == [
        "/docs/assets/swagger-ui-bundle.js",
        "/docs/static/init.js",
    ]
    assert "/openapi.json" in urls


def test_swagger_uis_files_are_served_with_long_cache_headers(http, docs):
    for url in Page(docs.get_data(as_text=True)).urls():
        if urlsplit(url).path.startswith("/docs/assets/"):
            answer = http.get(url)
            assert answer.cache_control.max_age == YEAR, url
            assert answer.cache_control.public and answer.cache_control.immutable, url
            assert f"v={apidocs.SWAGGER_UI_VERSION}" in url  # a new Swagger UI gets new URLs
    css = http.get("/docs/assets/swagger-ui.css")
    assert css.mimetype == "text/css"
    assert "swagger-ui" in css.get_data(as_text=True)[:2000]
    js = http.get("/docs/assets/swagger-ui-bundle.js")
    assert js.mimetype in ("text/javascript", "application/javascript")
    assert js.headers["X-Content-Type-Options"] == "nosniff"


def test_only_the_files_the_page_uses_are_served(http):
    for path in (
        "index.html",
        "swagger-initializer.js",
        "swagger-ui-bundle.js.map",
        "swagger-ui-standalone-preset.js",
        "oauth2-redirect.html",
        "nothing.js",
        "..%2F__init__.py",
        "%2e%2e/%2e%2e/__init__.py",
    ):
        assert http.get(f"/docs/assets/{path}").status_code == 404, path


def test_the_initialiser_reads_the_document_here_and_calls_no_validator(http):
    script = http.get("/docs/static/init.js")
    assert script.status_code == 200
    text = script.get_data(as_text=True)
    assert "validatorUrl: null" in text
    assert "://" not in text  # no address of another origin


def test_the_docs_are_not_in_the_openapi_document(http):
    paths = http.get("/openapi.json").get_json()["paths"]
    assert not [path for path in paths if path.startswith("/docs")]
