"""Job handlers for the job-machinery tests, driven by the job's payload.

``payload``: ``sleep`` seconds (in steps, checking whether to stop), ``fail`` ("error": raise
RuntimeError; "permanent": raise JobError), ``marker`` (a file written when the handler starts,
so that another process can tell the job is running). Every start is recorded in :data:`RUNS`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from server.jobs.queue import ClaimedJob
from server.jobs.worker import JobContext, JobError, Outcome

RUNS: list[tuple[int, int, str]] = []  # (job id, attempt, thread name) of every start
_lock = threading.Lock()
STEP_S = 0.02


def sleepy(job: ClaimedJob, context: JobContext) -> Outcome:
    with _lock:
        RUNS.append((job.id, job.attempt, threading.current_thread().name))
    if "marker" in job.payload:
        Path(job.payload["marker"]).write_text(str(job.id))
    deadline = time.monotonic() + float(job.payload.get("sleep", 0))
    steps = 0
    while time.monotonic() < deadline:
        context.check()
        steps += 1
        context.progress(steps * STEP_S / max(float(job.payload["sleep"]), 1e-9), "sleeping")
        time.sleep(STEP_S)
    failure = job.payload.get("fail")
    if failure == "error":
        raise RuntimeError(f"boom on attempt {job.attempt}")
    if failure == "permanent":
        raise JobError("this job cannot work: the payload says so")
    return Outcome(result={"attempt": job.attempt})


def slow_probe(job: ClaimedJob, context: JobContext) -> Outcome:
    """The real probe handler after a pause on its first attempt (long enough to be killed
    mid-run); the pause starts by writing the file named by GALSEARCH_TEST_MARKER."""
    from server.probe.task import run_probe_job

    if job.attempt == 1:
        Path(os.environ["GALSEARCH_TEST_MARKER"]).write_text(str(job.id))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            context.check()
            time.sleep(STEP_S)
    return run_probe_job(job, context)
