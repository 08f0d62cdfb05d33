"""Result stores: where task states and return values live when ``result_backend`` is set.

:func:`store_for_url` picks the store by the URL's scheme, as Celery picks a backend:

=============================================  ===========================================
``redis://``, ``rediss://``                     Memorystore for Redis / Valkey, any Redis
                                                (``pip install 'celery-gcp[redis]'``)
``db+postgresql://``, ``db+mysql://``,          Cloud SQL, any SQLAlchemy database; SQLite
``db+sqlite:///path``                           locally (``pip install 'celery-gcp[sql]'``)
``cache+memory://``, ``memory://``              in this process, for tests
=============================================  ===========================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..exceptions import ImproperlyConfigured
from .memory import MemoryStore
from .store import Meta, ResultStore

__all__ = ["MemoryStore", "Meta", "ResultStore", "register_scheme", "store_for_url"]

# scheme -> factory(url, **options); filled by register_scheme (the Redis and SQL stores add
# theirs here when they land, importing their drivers only when called).
_SCHEMES: dict[str, Callable[..., ResultStore]] = {
    "memory": lambda url, **_: MemoryStore(url),
    "cache+memory": lambda url, **_: MemoryStore(url),
}


def _redis_store(url: str, **options: Any) -> ResultStore:
    """``redis://`` / ``rediss://``: redis-py is imported here, when such a store is made."""
    try:
        import redis  # noqa: F401 - only to tell a missing driver from other import errors
    except ImportError as exc:
        raise ImproperlyConfigured(
            f"result_backend {url.split('://', 1)[0]}:// needs redis-py: "
            f"pip install 'celery-gcp[redis]'") from exc
    from .redis_store import RedisStore

    return RedisStore(url, **options)


_SCHEMES["redis"] = _SCHEMES["rediss"] = _redis_store


def register_scheme(scheme: str, factory: Callable[..., ResultStore]) -> None:
    """Make ``result_backend`` URLs of ``scheme`` (``"redis"``, ``"db+postgresql"``) build
    their store with ``factory(url, **options)`` (``app.backend`` passes ``conf=app.conf``,
    so a store can read its Celery settings)."""
    _SCHEMES[scheme] = factory


def store_for_url(url: str, **options: Any) -> ResultStore:
    """The store a ``result_backend`` URL names; :class:`ImproperlyConfigured` for a scheme
    no store serves (naming the ones that exist)."""
    scheme = url.split("://", 1)[0] if "://" in url else url
    factory = _SCHEMES.get(scheme)
    if factory is None:
        known = ", ".join(f"{s}://" for s in sorted(_SCHEMES))
        raise ImproperlyConfigured(
            f"result_backend {scheme + '://'!r} is not a result store celery_gcp has: use one "
            f"of {known}, or leave result_backend unset to keep no results")
    return factory(url, **options)
