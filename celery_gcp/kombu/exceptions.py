"""kombu's exceptions that Celery code catches: ``from kombu.exceptions import
OperationalError`` becomes ``from celery_gcp.kombu.exceptions import OperationalError``.

:class:`OperationalError` is the base of :class:`~celery_gcp.exceptions.TransportError`, so
``except OperationalError:`` around ``.delay()`` catches a send that failed (Cloud Tasks or the
emulator unreachable, refused, over its limits), as it catches a broker that is down in Celery.
"""

from __future__ import annotations

from ..exceptions import OperationalError

__all__ = ["OperationalError"]
