"""A lazy stand-in that forwards everything to an object found on each use (Celery's
``celery.local.Proxy``): ``current_app``, ``current_task`` and ``@shared_task`` tasks.

``isinstance(proxy, Celery)`` is answered by the target, as Celery's proxy answers it:
``isinstance`` reads ``__class__``, which the proxy forwards. Code that must not evaluate a
proxy (a scan of live objects) checks ``type(obj)``, which is always :class:`Proxy`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["Proxy"]


class Proxy:
    """Forwards attribute reads, writes, deletes, calls, ``bool``, ``==``, ``repr`` and
    pickling to ``resolve()``, called on every use (the target may change, as the current app
    does)."""

    __slots__ = ("__resolve", "__weakref__")

    def __init__(self, resolve: Callable[[], Any]) -> None:
        object.__setattr__(self, "_Proxy__resolve", resolve)

    def _get_current_object(self) -> Any:
        """The object this proxy stands for now (Celery's name)."""
        return self.__resolve()

    @property  # type: ignore[misc]  # forwarding __class__ is what makes isinstance() work
    def __class__(self) -> type:
        return type(self._get_current_object())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get_current_object(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._get_current_object(), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(self._get_current_object(), name)

    def __dir__(self) -> list[str]:
        return dir(self._get_current_object())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._get_current_object()(*args, **kwargs)

    def __bool__(self) -> bool:
        return bool(self._get_current_object())

    def __eq__(self, other: object) -> bool:
        return bool(self._get_current_object() == other)

    def __ne__(self, other: object) -> bool:
        return bool(self._get_current_object() != other)

    def __hash__(self) -> int:
        return hash(self._get_current_object())

    def __reduce__(self) -> str | tuple[Any, ...]:
        # Pickled and copied as the object itself, as Celery's proxy is.
        return self._get_current_object().__reduce__()  # type: ignore[no-any-return]

    def __repr__(self) -> str:
        return repr(self._get_current_object())

    def __str__(self) -> str:
        return str(self._get_current_object())
