"""Mirrors of ``celery.contrib``: ``django`` (the Django task class and fixup), ``pytest`` (the
pytest plugin) and ``testing`` (embedded workers and test apps)."""
