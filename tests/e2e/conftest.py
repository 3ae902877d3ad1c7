"""End-to-end tests: the built labeling app in Debian's Chromium against a real server.

The server is ``create_app`` on a temporary SQLite file, a small simulated survey (real-looking
cutouts) and a search bundle made from it in the session (train, embed, index), served by
Werkzeug on a free port in a thread of the test process, so a test can check what the clicks
stored by reading the database directly. A ``galsearch worker`` process runs beside it on the
same database and exports folder, as in production: it retrains the probe as labels come in
and writes the export files. Responses carry a strict
Content-Security-Policy, and every page records CSP violations: the app must run without
``'unsafe-inline'``.

Needs: the app built (``npm run build``; ``make test`` builds it first) and Chromium at
``/usr/bin/chromium`` (``apt-get install -y chromium``; ``make test`` installs it). Playwright
drives that binary: its own browser download is not used.

Screenshots of the main screens go to ``docs/screenshots/`` (the README shows them).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from argon2 import profiles
from flask import Response
from PIL import Image
from playwright.sync_api import Browser, BrowserContext, Page
from werkzeug.serving import BaseWSGIServer, make_server

from server.app import create_app
from server.auth.accounts import create_user
from server.extensions import db

REPO = Path(__file__).resolve().parents[2]
SPA_INDEX = REPO / "server" / "static" / "app" / "index.html"
FRONTEND_SOURCES = [REPO / "frontend", REPO / "vite.config.ts", REPO / "package.json"]
SCREENSHOTS = REPO / "docs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
# no sandbox (containers), no GPU, and nothing that phones home during the tests
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SURVEY_OBJECTS = 240
WORKER_POLL_S = 0.2  # the worker's longest wait between looks at an empty queue (SQLite polls)
PROBE_DEBOUNCE_S = 0.5  # a quiet moment after the last label change before the probe retrains
PASSWORD_SUFFIX = "-password"  # every test user's password is <name>-password
# what issue 9 will send in production; nothing in the app may need 'unsafe-inline'
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# collects securitypolicyviolation events (init scripts are exempt from the page's CSP)
RECORD_CSP_VIOLATIONS = """
window.__cspViolations = [];
document.addEventListener('securitypolicyviolation', (event) => {
  window.__cspViolations.push(`${event.violatedDirective}: ${event.blockedURI}`);
});
"""

def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.e2e)


# -- the browser --------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM}: `make test` installs it, or run "
                    "`apt-get install -y chromium`")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM),
            "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict[str, Any], base_url: str) -> dict[str, Any]:
    return {**browser_context_args, "base_url": base_url,
            "viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1}


def _watch(page: Page) -> list[str]:
    """Record the page's CSP violations and uncaught errors (read them with _problems)."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    page.add_init_script(RECORD_CSP_VIOLATIONS)
    return errors


def _problems(page: Page, errors: list[str]) -> list[str]:
    if not page.is_closed():
        try:
            errors += [f"CSP: {v}" for v in page.evaluate("window.__cspViolations || []")]
        except Exception as error:  # a page mid-navigation cannot be evaluated
            errors.append(f"could not read the CSP record: {error}")
    return errors


@pytest.fixture
def page(page: Page) -> Iterator[Page]:
    """Playwright's page, failing the test on a CSP violation or an uncaught error."""
    errors = _watch(page)
    yield page
    assert not _problems(page, errors)


@pytest.fixture
def new_page(browser: Browser, browser_context_args: dict[str, Any]) -> Iterator[Callable[[], Page]]:
    """``new_page()``: a page in a browser context of its own (another person, or the same one
    on another machine: no cookies, nothing cached), checked like ``page``."""
    opened: list[tuple[BrowserContext, Page, list[str]]] = []

    def new_page() -> Page:
        context = browser.new_context(**browser_context_args)
        page = context.new_page()
        opened.append((context, page, _watch(page)))
        return page

    yield new_page
    problems = [p for _, page, errors in opened for p in _problems(page, errors)]
    for context, _, _ in opened:
        context.close()
    assert not problems


# -- figures for the report ---------------------------------------------------------------------
FIGURES = pytest.StashKey[list[str]]()


@pytest.fixture
def report(request: pytest.FixtureRequest) -> Callable[[str], None]:
    """``report(line)``: a measured figure, printed in the run's summary."""
    return request.config.stash.setdefault(FIGURES, []).append


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(FIGURES, [])
    if lines:
        terminalreporter.section("labeling app: measured in Chromium")
        for line in lines:
            terminalreporter.write_line(line)


# -- the app ----------------------------------------------------------------------------------
def _check_build() -> None:
    if not SPA_INDEX.exists():
        pytest.fail(f"the app is not built ({SPA_INDEX} is missing): run `npm ci && npm run "
                    "build`, or `make test`, which does")
    built = SPA_INDEX.stat().st_mtime
    for source in FRONTEND_SOURCES:
        files = source.rglob("*") if source.is_dir() else [source]
        newer = [f for f in files if f.is_file() and "node_modules" not in f.parts
                 and f.stat().st_mtime > built]
        if newer:
            pytest.fail(f"the app's build is older than {newer[0].relative_to(REPO)}: run "
                        "`npm run build` (or `make test`)")


@pytest.fixture(scope="session")
def survey_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small simulated Legacy Surveys-like survey (real-looking cutouts)."""
    from ml.simulate.driver import simulate_survey

    folder = tmp_path_factory.mktemp("e2e") / "survey"
    simulate_survey(folder, n=SURVEY_OBJECTS, seed=8, workers=1, progress=False)
    return folder


@pytest.fixture(scope="session")
def bundle_path(survey_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A search bundle of the survey, made as the pipeline makes one: a (2-step, so in effect
    untrained) model trained on the survey, its representations, the Faiss index and arrays."""
    import numpy as np
    import torch

    from ml.augment import AugmentStats
    from ml.encoder import Encoder
    from ml.index import build_bundle
    from ml.index.cli import survey_mag_r
    from ml.survey import Survey
    from ml.train.config import TrainConfig
    from ml.train.loop import train

    AugmentStats.dr9_south().save(survey_path)  # the simulator draws from these fits
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run = tmp_path_factory.mktemp("run")
        train(TrainConfig.from_dict(dict(
            survey=str(survey_path), out_dir=str(run), arch="resnet10", width=8,
            small_stem=True, queue_size=16, batch_size=8, bn_groups=2, max_steps=2,
            num_workers=0, threads=1, progress=False, augment={"crop": 64, "out_size": 32})))
        encoder = Encoder.from_checkpoint(run / "release.pt")
        with Survey(survey_path) as survey:
            vectors = encoder.embed(survey.read_images(np.arange(survey.n)))["prehead"]
            return build_bundle(tmp_path_factory.mktemp("bundle") / "bundle", vectors,
                                survey_mag_r(survey), survey.path, survey.fingerprint(),
                                "prehead", checkpoint=run / "release.pt", k=20,
                                mag_window=0.5, progress=False)
    finally:
        torch.set_num_threads(threads)


@dataclass
class LiveServer:
    """The app served on a free port; makes users and reads what the app stored."""

    app: APIFlask
    url: str
    worker_log: Path  # the `galsearch worker` process's log (its stderr)
    users: dict[str, int] = field(default_factory=dict)

    def user(self, name: str, admin: bool = False) -> int:
        """Create user ``name`` (password ``<name>-password``) once; returns its id."""
        if name not in self.users:
            # as a write request: BEGIN IMMEDIATE, so that a commit of the worker process since
            # the transaction's first read cannot fail it (server.database)
            with self.app.test_request_context(method="POST"):
                user = create_user(name, name + PASSWORD_SUFFIX, is_admin=admin)
                db.session.commit()
                self.users[name] = user.id
        return self.users[name]

    def query(self, statement: Any) -> list[Any]:
        with self.app.app_context():
            return list(db.session.execute(statement).all())


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory, survey_path: Path,
                bundle_path: Path) -> Iterator[LiveServer]:
    _check_build()
    folder = tmp_path_factory.mktemp("server")
    database = f"sqlite:///{folder / 'e2e.db'}"
    app = create_app({
        "TESTING": True,
        "SECRET_KEY": "e2e-secret-key",
        "SQLALCHEMY_DATABASE_URI": database,
        "PASSWORD_HASH_PARAMETERS": profiles.CHEAPEST,
        "SURVEY_PATH": str(survey_path),
        "BUNDLE_PATH": str(bundle_path),
        "CUTOUT_CACHE_DIR": str(folder / "cutouts"),
        "EXPORTS_DIR": str(folder / "exports"),
        "PROBE_DEBOUNCE_S": PROBE_DEBOUNCE_S,
    })

    @app.after_request
    def _strict_csp(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        return response

    server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="e2e-server", daemon=True)
    thread.start()
    # the worker: the same database (created and migrated by create_app above), bundle, survey
    # and exports folder, read from the environment as `galsearch worker` reads them
    env = {**os.environ, "DATABASE_URL": database, "GALSEARCH_BUNDLE": str(bundle_path),
           "GALSEARCH_SURVEY": str(survey_path), "GALSEARCH_INSTANCE": str(folder),
           "GALSEARCH_EXPORTS_DIR": str(folder / "exports"), "SECRET_KEY": "e2e-secret-key",
           "GALSEARCH_PROBE_DEBOUNCE_S": str(PROBE_DEBOUNCE_S), "PYTHONPATH": str(REPO)}
    log = (folder / "worker.log").open("w")
    worker = subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--poll",
                               str(WORKER_POLL_S)], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=log)
    try:
        yield LiveServer(app, f"http://127.0.0.1:{server.server_port}", folder / "worker.log")
    finally:
        died = worker.poll()  # None: still running, as it should be
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        with app.app_context():
            db.engine.dispose()
        if died is not None:  # say so after the teardown (its log tells why probes never came)
            tail = (folder / "worker.log").read_text().splitlines()[-20:]
            pytest.fail(f"the galsearch worker exited early (status {died}):\n" + "\n".join(tail))


@pytest.fixture(scope="session")
def base_url(live_server: LiveServer) -> str:
    return live_server.url


# -- helpers ----------------------------------------------------------------------------------
@pytest.fixture
def sign_in(live_server: LiveServer) -> Callable[..., None]:
    """``sign_in(page, name, path="/")``: open ``path`` and sign in as ``name`` (created if
    needed) through the sign-in form."""

    def sign_in(page: Page, name: str, path: str = "/") -> None:
        live_server.user(name)
        page.goto(path)
        page.get_by_label("Username").fill(name)
        page.get_by_label("Password").fill(name + PASSWORD_SUFFIX)
        page.get_by_role("button", name="Sign in").click()
        page.get_by_role("button", name="Sign out").wait_for()

    return sign_in


UNNAMED_CONTROL = re.compile(
    r"^\s*- (button|link|textbox|combobox|slider|checkbox|radio|spinbutton|group)\s*(\[.*\])?:?$")


@pytest.fixture(scope="session")
def unnamed_controls() -> Callable[[Page], list[str]]:
    """``unnamed_controls(page)``: the page's controls that have no accessible name (read from
    its accessibility tree, as a screen reader gets it)."""

    def unnamed_controls(page: Page) -> list[str]:
        return [line for line in page.locator("body").aria_snapshot().splitlines()
                if UNNAMED_CONTROL.match(line)]

    return unnamed_controls


@pytest.fixture(scope="session")
def screenshot() -> Callable[[Page, str], Path]:
    """``screenshot(page, name)``: save the viewport to ``docs/screenshots/<name>.png``, at
    3/4 size and 128 colours to keep the committed files small (noisy cutouts compress badly)."""

    def screenshot(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        image = Image.open(BytesIO(page.screenshot(animations="disabled", caret="hide")))
        image = image.convert("RGB").resize((image.width * 3 // 4, image.height * 3 // 4),
                                            Image.Resampling.LANCZOS)
        image.quantize(colors=128, method=Image.Quantize.MEDIANCUT,
                       dither=Image.Dither.NONE).save(path, optimize=True)
        return path

    return screenshot
