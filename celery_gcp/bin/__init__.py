"""Celery's ``celery.bin`` is left out on purpose: importing this says why and what to do
instead (the command is ``celery-gcp``, in celery_gcp/cli/; the table is in absent.py)."""

from ..absent import refuse_import

refuse_import(__name__)
