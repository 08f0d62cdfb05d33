"""Small utilities, mirroring the parts of :mod:`celery.utils` that task code imports."""
