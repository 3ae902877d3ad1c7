"""Background jobs: one SQL table, one worker process type, every kind of background work.

- :mod:`server.jobs.queue`: enqueue with coalescing and debounce, claim (``SKIP LOCKED`` on
  PostgreSQL, an atomic conditional update on SQLite), leases, finishing.
- :mod:`server.jobs.worker`: the worker loop, its heartbeat thread, graceful shutdown, and what
  handlers see (:class:`~server.jobs.worker.JobContext`, :class:`~server.jobs.worker.Outcome`,
  :class:`~server.jobs.worker.JobError`).
- :mod:`server.jobs.kinds`: the kinds and their handlers (probe runs; exports plug in here).
- :mod:`server.jobs.cli`: ``galsearch worker``.

The table is :class:`server.models.Job`; its docstring draws the life of a job.
"""
