"""The kinds of background job and their handlers.

A handler is a plain function ``handler(job: ClaimedJob, context: JobContext) -> Outcome``
(:mod:`server.jobs.worker`): it reads what it needs by the ids in ``job`` (``campaign_id``,
``payload``), does the work, reports ``context.progress(...)``, calls ``context.check()``
between steps (so that a stopping worker or a cancel request ends it early), and returns an
:class:`~server.jobs.worker.Outcome` whose ``store`` writes its rows in the transaction that
marks the job succeeded. It raises :class:`~server.jobs.worker.JobError` for a failure that
another attempt would not fix (the message is shown to users as is); any other exception is
retried up to the kind's ``max_attempts``.

To add a kind, add a line to :data:`JOB_KINDS`; the handler is imported only by workers that
run that kind.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class JobKind:
    """A kind of job: its handler ("module:function") and retry policy."""

    name: str
    handler: str
    max_attempts: int = 3
    retry_delay_s: float = 5.0  # before a failed attempt is tried again (times the attempt)

    def load(self) -> Callable:
        module_name, attr = self.handler.split(":")
        return getattr(importlib.import_module(module_name), attr)


JOB_KINDS: dict[str, JobKind] = {
    "probe": JobKind("probe", "server.probe.task:run_probe_job", max_attempts=3),
    "export": JobKind("export", "server.exports.task:run_export_job", max_attempts=3),
}


def job_kind(name: str) -> JobKind:
    """The kind called ``name``.

    Raises:
        ValueError: no such kind (the message lists the known ones).
    """
    try:
        return JOB_KINDS[name]
    except KeyError:
        raise ValueError(f"unknown job kind {name!r}: use one of "
                         f"{', '.join(sorted(JOB_KINDS))}") from None
