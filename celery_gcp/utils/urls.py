"""URLs in messages and logs."""

from __future__ import annotations

import re

__all__ = ["masked_url"]

_PASSWORD = re.compile(r"//([^:/@]*):[^@/]*@")


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ``***``, for errors and logs.

    Example::

        masked_url("redis://:s3cret@10.0.0.3:6379/0") == "redis://:***@10.0.0.3:6379/0"
    """
    return _PASSWORD.sub(r"//\1:***@", url)
