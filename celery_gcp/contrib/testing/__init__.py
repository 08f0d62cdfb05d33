"""``celery.contrib.testing`` for celery_gcp: :mod:`.app` (``TestApp``,
``setup_default_app``) and :mod:`.worker` (``start_worker``: the app served over real HTTP
behind the embedded Cloud Tasks emulator). The pytest fixtures are in
:mod:`celery_gcp.contrib.pytest`."""
