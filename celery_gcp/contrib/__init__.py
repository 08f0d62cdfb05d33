"""Mirrors of :mod:`celery.contrib`."""
