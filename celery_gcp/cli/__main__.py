"""``python -m celery_gcp.cli``: the ``celery-gcp`` command."""

from . import main

main()
