"""``galsearch worker``: run background jobs (probe retraining, exports) beside the web server."""

from __future__ import annotations

import logging
import signal

import click

from server.jobs.kinds import JOB_KINDS


def _kinds(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    kinds = [k.strip() for k in value.split(",") if k.strip()]
    unknown = sorted(set(kinds) - set(JOB_KINDS))
    if unknown or not kinds:
        raise click.BadParameter(f"unknown kinds {unknown or value!r}: choose among "
                                 f"{', '.join(sorted(JOB_KINDS))}")
    return kinds


@click.command("worker")
@click.option("--once", is_flag=True, help="run the jobs that are due, then exit")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(0.05, 60),
              help="longest wait in seconds between looks at an empty queue")
@click.option("--kinds", default=",".join(JOB_KINDS), show_default=True, callback=_kinds,
              help="comma-separated job kinds this worker runs")
@click.option("--lease", type=click.FloatRange(1, 3600), default=None,
              help="lease in seconds, renewed every quarter of it while a job runs "
                   "[default: GALSEARCH_JOB_LEASE_S or 30]")
def worker(once: bool, poll: float, kinds: list[str], lease: float | None) -> None:
    """Run background jobs from the database: probe retraining, exports.

    Reads the same environment as `galsearch serve` (DATABASE_URL, GALSEARCH_BUNDLE, ...).
    Several workers may run side by side. SIGTERM or Ctrl-C stops it gracefully: the running
    job finishes or is handed back to the queue.
    """
    from server.commands import _app
    from server.extensions import db
    from server.jobs.worker import Worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    app = _app()
    runner = Worker(app, kinds, poll_s=poll, lease_s=lease)

    def stop(signum: int, frame: object) -> None:
        click.echo(f"{signal.Signals(signum).name}: stopping after the current job", err=True)
        runner.request_stop()
        # a second signal acts at once
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        count = runner.run(once=once)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        with app.app_context():
            db.engine.dispose()
    click.echo(f"worker stopped after {count} job(s)", err=True)
