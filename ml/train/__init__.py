"""MoCo v2 training: settings (``config``), data (``data``), the loop (``loop``), checkpoint
files (``checkpoint``), the run log (``runlog``), the schedule and distributed set-up."""
