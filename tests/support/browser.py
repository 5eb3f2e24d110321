"""Headless Chromium for the browser tests: Debian's chromium driven by
Selenium (plain HTTP to chromedriver, so it lives with eventlet's monkey
patching), axe-core for accessibility, and an app served over real HTTP.

    with serve(app) as url:                       # the app on 127.0.0.1:<free port>
        driver = open_browser(lang="az", width=360, height=780)
        try:
            driver.get(url + "/docs")
            wait_for(driver, "#operations-referrals-post_v1_referrals")
            assert console_errors(driver) == []
            assert axe_violations(driver) == []
        finally:
            driver.quit()

The `browser` fixture of tests/browser/conftest.py does the opening and
quitting. Everything needed is put on the machine by bin/install-browser;
nothing is ever downloaded here (Selenium Manager is never asked: the driver
and the browser are given by path).
"""

import contextlib
import json
import pathlib
import shutil
import sys
import tempfile
import threading

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait
from werkzeug.serving import make_server

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ROOT = pathlib.Path(__file__).resolve().parents[2]
AXE_SCRIPT = pathlib.Path("browser", "node_modules", "axe-core", "axe.min.js")
AXE_PLACES = tuple(dict.fromkeys((ROOT / ".venv" / AXE_SCRIPT, pathlib.Path(sys.prefix) / AXE_SCRIPT)))

DESKTOP = (1280, 900)
PHONE = (360, 780)

FLAGS = (
    "--headless=new",
    "--no-sandbox",  # root in a container: Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
# The network closed but for this machine: every other origin goes to a
# proxy on a port where nothing listens (loopback never uses the proxy), and
# no host name resolves but localhost.
OFFLINE_FLAGS = (
    "--proxy-server=http://127.0.0.1:9",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


class BrowserMissing(RuntimeError):
    """Chromium, its driver or axe-core is not on this machine."""


def axe_script():
    """The path of axe.min.js, or None."""
    return next((path for path in AXE_PLACES if path.is_file()), None)


def missing():
    """What the browser tests need and this machine lacks: a sentence, or ''."""
    lacking = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not pathlib.Path(path).is_file()]
    if axe_script() is None:
        lacking.append(" or ".join(str(path) for path in AXE_PLACES))
    if not lacking:
        return ""
    return "The browser tests need " + ", ".join(lacking) + ": run bin/install-browser"


class Browser(webdriver.Chrome):
    """A Chrome driver that removes its own profile when it quits."""

    profile = None

    def quit(self):
        try:
            super().quit()
        finally:
            if self.profile:
                shutil.rmtree(self.profile, ignore_errors=True)


def open_browser(lang="en", width=DESKTOP[0], height=DESKTOP[1], offline=True, page_load_timeout=30):
    """A headless Chromium on a fresh profile, its viewport width x height, its
    language `lang` (the UI's and Accept-Language), the browser's console kept
    (console_errors) and, when offline, no network but 127.0.0.1/localhost.
    The caller quits it (driver.quit()); raises BrowserMissing with what to
    run when something is not installed."""
    problem = missing()
    if problem:
        raise BrowserMissing(problem)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS + (OFFLINE_FLAGS if offline else ()):
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    options.add_argument(f"--lang={lang}")
    options.add_experimental_option("prefs", {"intl.accept_languages": lang})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    try:
        driver = Browser(service=Service(CHROMEDRIVER), options=options)
    except BaseException:
        shutil.rmtree(profile, ignore_errors=True)
        raise
    driver.profile = profile
    try:
        driver.set_page_load_timeout(page_load_timeout)
        driver.set_script_timeout(30)
        set_viewport(driver, width, height)
    except BaseException:
        driver.quit()
        raise
    return driver


def set_viewport(driver, width, height):
    """Make the page's viewport (window.innerWidth x innerHeight) width x
    height. Headless Chromium's --window-size and set_window_size size the
    window, whose viewport is about 140 px shorter, and --window-size is
    never narrower than 500 px; set_window_size is, once the browser runs."""
    driver.set_window_size(width, height)
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if inner != [width, height]:
        driver.set_window_size(2 * width - inner[0], 2 * height - inner[1])


def wait_for(driver, css, timeout=10):
    """The first element matching the CSS selector, once there is one."""
    return WebDriverWait(driver, timeout).until(
        lambda d: d.find_elements("css selector", css) or False,
        message=f"nothing matched {css!r} within {timeout} s at {driver.current_url}",
    )[0]


def replaced(element):
    """A wait's condition: the page that held `element` has gone. Chrome
    says so as a stale element, or, caught mid-navigation, as a node that
    "does not belong to the document" (selenium's staleness_of knows only
    the first)."""

    def gone(driver):
        try:
            element.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as error:
            if "does not belong to the document" in str(error):
                return True
            raise
        return False

    return gone


def axe_violations(driver, impacts=("serious", "critical"), context=None, options=None):
    """axe-core's violations on the page now open, those of the given impacts:
    [{"id", "impact", "help", "nodes": [CSS target, ...]}, ...] so that a
    failing `assert ... == []` says what is wrong and where. `context` and
    `options` go to axe.run as they are (e.g. {"exclude": [...]},
    {"runOnly": ["wcag2a", "wcag2aa"]})."""
    path = axe_script()
    if path is None:
        raise BrowserMissing(missing())
    # execute_script runs through the DevTools protocol: the page's
    # Content-Security-Policy does not stop it.
    driver.execute_script(path.read_text(encoding="utf-8"))
    outcome = driver.execute_async_script(
        """
        const [context, options, done] = arguments;
        axe.run(context || document, Object.assign({resultTypes: ["violations"]}, options || {}))
          .then(results => done({violations: results.violations}), error => done({error: String(error)}));
        """,
        context,
        options,
    )
    if "error" in outcome:
        raise RuntimeError(f"axe.run failed: {outcome['error']}")
    return [
        {
            "id": violation["id"],
            "impact": violation["impact"],
            "help": violation["help"],
            "nodes": [" >>> ".join(map(str, node["target"])) for node in violation["nodes"]],
        }
        for violation in outcome["violations"]
        if violation["impact"] in impacts
    ]


def screenshot(driver, path):
    """A PNG of the whole page (not only the viewport) at `path`."""
    size = driver.get_window_size()
    width, height, page = driver.execute_script(
        "return [window.innerWidth, window.innerHeight,"
        " Math.max(document.body.scrollHeight, document.documentElement.scrollHeight)]"
    )
    try:
        # the viewport as tall as the page (Chromium paints no taller than this)
        set_viewport(driver, width, min(max(page, height), 16000))
        driver.save_screenshot(str(path))
    finally:
        driver.set_window_size(size["width"], size["height"])
    return path


def console_errors(driver):
    """The SEVERE entries of the browser's console since the last call
    (errors, failed loads, Content-Security-Policy violations): messages."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def requested_urls(driver):
    """Every http(s)/ws(s) URL the browser asked for since the last call
    (documents, scripts, styles, images, fetches; also those the page's
    Content-Security-Policy then blocked), from the performance log. The
    browser's own chrome:// pages and data: URLs are left out."""
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.split(":", 1)[0] in ("http", "https", "ws", "wss"):
                urls.append(url)
    return urls


@contextlib.contextmanager
def serve(app, host="127.0.0.1"):
    """Serve the WSGI app over real HTTP on a free port, in a (green) thread
    of this process: yields its base URL ("http://127.0.0.1:<port>")."""
    server = make_server(host, 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
