"""``galsearch demo``: the pipeline on the demo preset, then the labeling app with a ready
account and example campaign (:mod:`server.demo.cli`, :mod:`server.demo.setup`)."""
