"""The campaign probe on the server: when it retrains, what it learns from, how it orders pages.

- :mod:`server.probe.schedule`: label writes mark a campaign for retraining (debounced,
  coalesced into one queued job); "retrain now".
- :mod:`server.probe.labels`: the probe's labels (the one function to change for another
  label source) and the seeds it counts as positives.
- :mod:`server.probe.task`: the worker's ``probe`` job: train (:mod:`ml.probe`), store a
  :class:`~server.models.ProbeRun`.
- :mod:`server.probe.serving`: candidate pages in the newest probe's order.
- :mod:`server.probe.settings`: the campaign settings it reads (strategy, unlabeled weight).
"""
