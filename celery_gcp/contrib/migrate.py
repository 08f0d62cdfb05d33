"""Celery's ``celery.contrib.migrate`` is left out on purpose: importing this says why and what
to do instead (the table is in celery_gcp/absent.py)."""

from ..absent import refuse_import

refuse_import(__name__)
