"""Pages of a List call: ``page_size`` and ``page_token`` as Cloud Tasks takes them (a token
is the index of the page's first item, as this emulator hands them out)."""

from __future__ import annotations

from typing import Any

import grpc

from ..platform import MAX_PAGE_SIZE
from .rpc import RpcError

__all__ = ["DEFAULT_PAGE", "page_of"]

#: Items on a page whose ``page_size`` is 0 (the service's default).
DEFAULT_PAGE = 1000
_INVALID = grpc.StatusCode.INVALID_ARGUMENT


def page_of(items: list[Any], size: int, token: str) -> tuple[list[Any], str]:
    """The page of ``items`` that ``size`` and ``token`` ask for, and the next page's token
    (empty after the last page)."""
    if size < 0 or size > MAX_PAGE_SIZE:
        raise RpcError(_INVALID, f"page_size {size} is outside 0..{MAX_PAGE_SIZE}")
    if token and not (token.isascii() and token.isdigit()):
        raise RpcError(_INVALID, f"page_token {token!r} was not given by a previous page")
    start = int(token) if token else 0
    end = start + (size if size > 0 else DEFAULT_PAGE)
    return items[start:end], (str(end) if end < len(items) else "")
