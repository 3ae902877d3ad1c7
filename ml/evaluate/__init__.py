"""Evaluation of representations by exact cosine search: the maths (``metrics``), the
baselines (``baselines``), the run over a survey (``evaluation``) and its files (``report``)."""
