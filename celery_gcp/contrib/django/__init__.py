"""Django support, as Celery's ``celery.contrib.django`` and Django fixup: see
:mod:`celery_gcp.contrib.django.task` (``delay_on_commit``) and
:mod:`celery_gcp.contrib.django.fixup` (``django.setup()``, database connections)."""
