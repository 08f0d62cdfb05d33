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

from collections.abc import Callable, Mapping
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
# prefix -> factory, for scheme families (``db+`` and any SQLAlchemy dialect[+driver]).
_PREFIXES: dict[str, Callable[..., ResultStore]] = {}
# scheme or prefix -> {factory option: the app setting it is read from}
_SETTINGS: dict[str, Mapping[str, str]] = {}
_PASS_CONF: set[str] = set()


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


def _sql_store(url: str, **options: Any) -> ResultStore:
    from .sql_store import SqlStore  # imports SQLAlchemy: only when a db+ store is made

    return SqlStore(url, **options)


def register_scheme(scheme: str, factory: Callable[..., ResultStore], *, prefix: bool = False,
                    settings: Mapping[str, str] | None = None, pass_conf: bool = False) -> None:
    """Make ``result_backend`` URLs of ``scheme`` (``"redis"``; with ``prefix=True`` every
    scheme starting with it, ``"db+"``) build their store with ``factory(url, **options)``;
    ``settings`` maps a factory option to the app setting :func:`store_for_url` reads it
    from when given ``conf``; with ``pass_conf`` the factory is given ``conf=`` itself (a
    store reading many of its settings, Redis)."""
    (_PREFIXES if prefix else _SCHEMES)[scheme] = factory
    _SETTINGS[scheme] = dict(settings or {})
    if pass_conf:
        _PASS_CONF.add(scheme)


register_scheme("redis", _redis_store, pass_conf=True)
register_scheme("rediss", _redis_store, pass_conf=True)
register_scheme("db+", _sql_store, prefix=True, settings={
    "engine_options": "database_engine_options", "table_names": "database_table_names",
    "table_schemas": "database_table_schemas"})


def store_for_url(url: str, conf: Mapping[str, Any] | None = None,
                  **options: Any) -> ResultStore:
    """The store a ``result_backend`` URL names; :class:`ImproperlyConfigured` for a scheme
    no store serves (naming the ones that exist). With ``conf`` (the app's settings), the
    settings the scheme registered are passed on as options when set."""
    scheme = url.split("://", 1)[0] if "://" in url else url
    key, factory = scheme, _SCHEMES.get(scheme)
    for prefix, candidate in _PREFIXES.items():
        if factory is None and scheme.startswith(prefix) and len(scheme) > len(prefix):
            key, factory = prefix, candidate
    if factory is None:
        known = ", ".join([*(f"{s}://" for s in sorted(_SCHEMES)),
                           *(f"{p}<dialect>://" for p in sorted(_PREFIXES))])
        raise ImproperlyConfigured(
            f"result_backend {scheme + '://'!r} is not a result store celery_gcp has: use one "
            f"of {known}, or leave result_backend unset to keep no results")
    for option, setting in _SETTINGS.get(key, {}).items():
        value = None if conf is None else conf.get(setting)
        if value is not None:
            options.setdefault(option, value)
    if key in _PASS_CONF:
        options.setdefault("conf", conf)
    return factory(url, **options)
