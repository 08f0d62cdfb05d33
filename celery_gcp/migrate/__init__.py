"""``celery-gcp migrate``: rewrite a Celery project's imports to celery_gcp, and report each use
of a Celery feature that works differently here or not at all.

The package is imported only by that command (libcst is loaded with it, never by the app or
the CLI's start-up). ``features.py`` is the one table of facts the tool reports from and the
migration guide's feature index is rendered from.
"""
