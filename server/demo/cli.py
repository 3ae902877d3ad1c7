"""``galsearch demo [--train] [--port 5000] [--no-serve]``: what ``make demo`` runs.

1. ``galsearch pipeline --config configs/demo.toml``: the 20,000-object simulated survey, the
   shipped model (or, with ``--train``, one trained from scratch within the preset's time
   budget), embeddings, the search bundle and its evaluation; stages already done are skipped,
   so a second run takes seconds.
2. The labeling app on SQLite in the instance folder (``instance/``, or ``GALSEARCH_INSTANCE``):
   the ``demo`` user and an example campaign (:mod:`server.demo.setup`), made once.
3. ``galsearch serve`` and one ``galsearch worker`` beside it, on http://127.0.0.1:PORT; their
   logs go to ``<instance>/logs/``. Ctrl-C (or SIGTERM) stops both and waits for them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import click

DEFAULT_CONFIG = "configs/demo.toml"
HOST = "127.0.0.1"  # the demo's fixed password is fine only on this machine's loopback
READY_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 20.0


def demo_environment(bundle: Path, survey: Path) -> dict[str, str]:
    """What the app, its worker and the setup read: the demo's bundle and survey, development
    mode, and no DATABASE_URL (the default SQLite file in the instance folder)."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(GALSEARCH_BUNDLE=str(bundle.absolute()), GALSEARCH_SURVEY=str(survey.absolute()),
               GALSEARCH_ENV="development")
    return env


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((HOST, port))
        except OSError:
            return False
    return True


@click.command("demo")
@click.option("--train", is_flag=True,
              help="Train the model from scratch (within the preset's time budget) instead of "
                   "using the shipped one.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(1, 65535),
              help="Port of the web app on 127.0.0.1.")
@click.option("--no-serve", is_flag=True,
              help="Prepare everything (pipeline, user, example campaign), then exit.")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="The preset the pipeline runs.")
@click.argument("overrides", nargs=-1)
def demo(train: bool, port: int, no_serve: bool, config_path: str,
         overrides: tuple[str, ...]) -> None:
    """Run the whole system on a simulated survey: the search bundle, then the labeling app.

    OVERRIDES are the pipeline's key=value settings (see `galsearch pipeline --help`).
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see `galsearch train`
    from ml.pipeline import PipelineError, load_pipeline_config, run_pipeline
    from ml.train.config import ConfigError

    t0 = time.monotonic()
    try:
        config = load_pipeline_config(config_path, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    if not no_serve and not port_is_free(port):
        raise click.ClickException(f"port {port} on {HOST} is in use (another galsearch demo or "
                                   "server?); stop it, or pass --port N")

    click.secho("galsearch demo: 1/3 the offline pipeline", bold=True)
    try:
        result = run_pipeline(config, train=train, echo=click.echo)
    except PipelineError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(result.summary())

    click.secho("galsearch demo: 2/3 the labeling app's database", bold=True)
    if os.environ.get("DATABASE_URL"):
        click.echo("note: DATABASE_URL is set but the demo uses its own SQLite database")
    env = demo_environment(config.bundle_dir, config.survey)
    os.environ.pop("DATABASE_URL", None)
    os.environ.update(env)  # for the app built here to set up the database
    instance, setup = _prepare_app()
    if setup.user_created:
        click.echo("created the user 'demo' (administrator)")
    if setup.campaign_id is not None:
        state = "created" if setup.campaign_created else "kept"
        click.echo(f"{state} the example campaign {setup.campaign_id} (seed: lens "
                   f"{setup.seed_object_id}; {setup.same_class_on_first_page} other lenses among "
                   "its first page of candidates)")
    _check_frontend()
    if no_serve:
        click.echo(f"ready ({time.monotonic() - t0:.0f} s). Serve it with:\n"
                   f"  export GALSEARCH_BUNDLE={env['GALSEARCH_BUNDLE']} "
                   f"GALSEARCH_SURVEY={env['GALSEARCH_SURVEY']}\n"
                   "  galsearch serve & galsearch worker")
        return

    click.secho("galsearch demo: 3/3 the web app and its worker", bold=True)
    _serve(port, env, instance, t0, setup.user_created)


def _prepare_app():
    """Migrate the database and make the demo's user and campaign; returns (instance, setup)."""
    from server.app import create_app
    from server.config import ConfigError
    from server.demo.setup import setup_demo
    from server.extensions import db
    from server.sources import current_bundle, current_survey

    try:
        app = create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        with app.app_context():
            setup = setup_demo(current_bundle(), current_survey())
    finally:
        with app.app_context():
            db.engine.dispose()
    return Path(app.instance_path), setup


def _check_frontend() -> None:
    from server.spa import DEFAULT_SPA_DIR, INDEX

    if not (DEFAULT_SPA_DIR / INDEX).is_file():
        click.secho(f"note: the web app is not built ({DEFAULT_SPA_DIR / INDEX} is missing); "
                    "`make demo` builds it, or run `npm ci && npm run build`. The API works "
                    "without it.", fg="yellow")


def _serve(port: int, env: dict[str, str], instance: Path, t0: float,
           new_user: bool) -> None:
    from server.demo.setup import DEMO_PASSWORD, DEMO_USER, EXAMPLE_CAMPAIGN

    logs = instance / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    commands = {
        "serve": [sys.executable, "-m", "server.cli", "serve", "--host", HOST, "--port",
                  str(port)],
        "worker": [sys.executable, "-m", "server.cli", "worker"],
    }
    stop = {"signal": None}

    def on_signal(signum: int, frame: object) -> None:
        stop["signal"] = signum

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    processes: dict[str, subprocess.Popen] = {}
    try:
        for name, command in commands.items():
            log = open(logs / f"demo-{name}.log", "ab")  # noqa: SIM115 (closed with the process)
            # a session of their own: Ctrl-C reaches the demo, which stops them in order
            processes[name] = subprocess.Popen(command, env=env, stdout=log,
                                               stderr=subprocess.STDOUT, start_new_session=True)
            log.close()
        url = f"http://{HOST}:{port}/"
        _wait_ready(url, processes, logs, stop)
        if stop["signal"] is None:
            click.echo("")
            click.secho(f"  galsearch is running at {url}  (ready after "
                        f"{time.monotonic() - t0:.0f} s)", bold=True)
            unless = "" if new_user else " (unless you changed it in the app)"
            click.echo(f"  sign in as {DEMO_USER!r} with the password {DEMO_PASSWORD!r}{unless}")
            click.echo(f"  try: open the campaign {EXAMPLE_CAMPAIGN!r} and label its candidates "
                       "with a / r / u (? lists the keys), or start a campaign of your own from "
                       "any object, sky position or cutout")
            click.echo(f"  logs: {logs}/demo-serve.log, demo-worker.log;  Ctrl-C stops")
        while stop["signal"] is None:
            for name, process in processes.items():
                if process.poll() is not None:
                    raise click.ClickException(
                        f"galsearch {name} exited ({process.returncode}):\n"
                        + _tail(logs / f"demo-{name}.log"))
            time.sleep(0.3)
    finally:
        _stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped the web app and the worker")


def _wait_ready(url: str, processes: dict[str, subprocess.Popen], logs: Path,
                stop: dict) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while stop["signal"] is None:
        if processes["serve"].poll() is not None:
            raise click.ClickException("galsearch serve did not start:\n"
                                       + _tail(logs / "demo-serve.log"))
        try:
            urllib.request.urlopen(url + "api/openapi.json", timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            if time.monotonic() > deadline:
                raise click.ClickException(
                    f"the web app did not answer on {url} within {READY_TIMEOUT_S:.0f} s; see "
                    f"{logs / 'demo-serve.log'}") from None
            time.sleep(0.3)


def _stop(processes: dict[str, subprocess.Popen]) -> None:
    """SIGTERM (the worker hands its job back, the server stops), then wait; kill stragglers."""
    for process in processes.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for process in processes.values():
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
