"""Exports: a campaign's labeled objects as files, written by background jobs.

- :mod:`server.exports.table`: which objects (filters) and their rows, batch by batch;
- :mod:`server.exports.tabular`: CSV, JSON and FITS tables;
- :mod:`server.exports.training_set`: the HDF5 training set (cutouts, labels, split);
- :mod:`server.exports.zooniverse`: a zipped Zooniverse-style subject set;
- :mod:`server.exports.files`: paths, and writing files that are complete or absent;
- :mod:`server.exports.task`: starting an export (a request) and the ``export`` job handler.
"""
