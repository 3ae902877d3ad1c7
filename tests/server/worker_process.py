"""A worker process for the fault tests: ``galsearch worker`` itself, with the probe handler
paused on first attempts (:func:`job_handlers.slow_probe`) so that a test can kill it mid-run.

Run as ``python worker_process.py [worker options]`` with the app's environment set
(DATABASE_URL, GALSEARCH_BUNDLE, GALSEARCH_INSTANCE, SECRET_KEY, GALSEARCH_TEST_MARKER).
"""

from __future__ import annotations

import sys

from server.cli import main
from server.jobs.kinds import JOB_KINDS, JobKind

if __name__ == "__main__":
    JOB_KINDS["probe"] = JobKind("probe", "job_handlers:slow_probe", max_attempts=3)
    main(["worker", "--kinds", "probe", *sys.argv[1:]], prog_name="galsearch")
