"""What a worker stored about a run with ``result_extended``, read back as Celery's
``AsyncResult`` attributes: ``name``, ``args``, ``kwargs``, ``worker``, ``retries``,
``queue`` (:class:`~celery_gcp.results.asyncresult.AsyncResult` has them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import Meta

__all__ = ["ExtendedFields"]


class ExtendedFields:
    """The ``result_extended`` fields of a result whose record :meth:`_meta` reads."""

    _name: str | None = None

    def _meta(self) -> Meta | None:
        raise NotImplementedError

    def _extended(self, field: str) -> Any:
        meta = self._meta()
        return None if meta is None else meta.get(field)

    @property
    def name(self) -> str | None:
        """The task's name: the one it was sent with, else the stored one
        (``result_extended``)."""
        return self._name or self._extended("name")

    @name.setter
    def name(self, value: str | None) -> None:
        self._name = value

    @property
    def args(self) -> list[Any] | None:
        """The positional arguments of the run (``result_extended``; ``None`` without)."""
        return self._extended("args")  # type: ignore[no-any-return]

    @property
    def kwargs(self) -> dict[str, Any] | None:
        """The keyword arguments of the run (``result_extended``)."""
        return self._extended("kwargs")  # type: ignore[no-any-return]

    @property
    def worker(self) -> str | None:
        """The node name of the worker that ran it, ``celery@<host>`` (``result_extended``)."""
        return self._extended("worker")  # type: ignore[no-any-return]

    @property
    def retries(self) -> int | None:
        """How many times the run was retried (``result_extended``)."""
        return self._extended("retries")  # type: ignore[no-any-return]

    @property
    def queue(self) -> str | None:
        """The queue the run came from (``result_extended``)."""
        return self._extended("queue")  # type: ignore[no-any-return]
