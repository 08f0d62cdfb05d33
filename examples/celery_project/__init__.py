"""A Celery project written the ordinary way, with Celery's own imports.

It is the input of ``celery-gcp migrate``: tests/migrate/test_example_project.py copies it,
runs ``celery-gcp migrate --write`` on the copy and runs the result under ``celery-gcp dev``.
The test suite never imports it as it is here.
"""
