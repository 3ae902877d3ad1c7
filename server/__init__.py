"""galsearch's web side: the Flask app, SQL models, the background worker and the CLI."""
