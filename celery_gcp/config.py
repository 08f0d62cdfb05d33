"""Settings: Celery's keys (old upper-case names included) and this project's Google Cloud keys.

``app.conf`` behaves like Celery's: attribute and item access, ``update``, and the pre-4.0
upper-case names mapped to the new ones. Mixing old and new names in one configuration raises
:class:`ImproperlyConfigured`, as Celery does.

The Google Cloud settings default from the environment:

=========================  ==========================================  ====================
setting                    environment variable                        default
=========================  ==========================================  ====================
``gcp_project``            ``GOOGLE_CLOUD_PROJECT`` (``GCLOUD_PROJECT``) none
``gcp_location``           ``CELERY_GCP_LOCATION``                     ``us-central1``
``gcp_scheduler_location`` ``CELERY_GCP_SCHEDULER_LOCATION``           ``gcp_location``
``task_base_url``          ``CELERY_GCP_TASK_BASE_URL``                none
``task_endpoint_prefix``   ``CELERY_GCP_TASK_ENDPOINT_PREFIX``         ``/_tasks``
``gcp_service_account``    ``CELERY_GCP_SERVICE_ACCOUNT``              none
``task_auth``              ``CELERY_GCP_TASK_AUTH``                    ``oidc``
``task_oidc_certs_url``    ``CELERY_GCP_OIDC_CERTS_URL``               Google's v1 certs
``worker_docs``            ``CELERY_GCP_WORKER_DOCS`` (``1``/``true``)  off
=========================  ==========================================  ====================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from datetime import timedelta
from typing import Any

from ._setting_names import NEW_TO_OLD, OLD_TO_NEW
from .config_sources import Source, read_source
from .exceptions import ImproperlyConfigured
from .platform import CERTS_URL_VARIABLE

__all__ = ["PendingSettings", "Settings", "defaults", "detect_mixed_names", "read_source"]

_CELERY_DEFAULTS: dict[str, Any] = {
    "accept_content": ["json"],
    "beat_schedule": {},
    "broker_url": None,
    "enable_utc": True,
    "imports": (),
    "include": (),
    "result_backend": None,
    "result_expires": timedelta(days=1),
    "result_extended": False,
    "result_serializer": "json",
    "task_acks_late": False,
    "task_acks_on_failure_or_timeout": True,
    "task_always_eager": False,
    "task_annotations": None,
    "task_default_queue": "celery",
    "task_default_rate_limit": None,
    "task_eager_propagates": False,
    "task_ignore_result": False,
    "task_store_eager_result": False,
    "task_store_errors_even_if_ignored": False,
    "task_track_started": False,
    "task_routes": None,
    "task_serializer": "json",
    "task_soft_time_limit": None,
    "task_time_limit": None,
    "timezone": None,
    "worker_deduplicate_successful_tasks": False,
    "worker_hijack_root_logger": True,
    "worker_log_format": "[%(asctime)s: %(levelname)s/%(processName)s] %(message)s",
    "worker_task_log_format": ("[%(asctime)s: %(levelname)s/%(processName)s] "
                               "%(task_name)s[%(task_id)s]: %(message)s"),
}


def defaults(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Every setting's default, the Google Cloud ones read from ``environ``."""
    env = os.environ if environ is None else environ
    out: dict[str, Any] = dict.fromkeys(OLD_TO_NEW.values())
    out.update(_CELERY_DEFAULTS)
    out.update(
        gcp_project=env.get("GOOGLE_CLOUD_PROJECT") or env.get("GCLOUD_PROJECT"),
        gcp_location=env.get("CELERY_GCP_LOCATION", "us-central1"),
        task_base_url=env.get("CELERY_GCP_TASK_BASE_URL"),
        task_endpoint_prefix=env.get("CELERY_GCP_TASK_ENDPOINT_PREFIX", "/_tasks"),
        gcp_service_account=env.get("CELERY_GCP_SERVICE_ACCOUNT"),
        task_auth=env.get("CELERY_GCP_TASK_AUTH", "oidc"),
        task_oidc_audience=env.get("CELERY_GCP_TASK_OIDC_AUDIENCE"),
        task_oidc_certs_url=env.get(CERTS_URL_VARIABLE),
        task_oidc_allowed_emails=None,
        gcp_scheduler_location=env.get("CELERY_GCP_SCHEDULER_LOCATION"),
        task_send_concurrency=16,
        beat_sub_minute=False,
        beat_job_defaults={},
        worker_docs=env.get("CELERY_GCP_WORKER_DOCS", "").lower() in ("1", "true", "yes"),
        # None: JSON for Cloud Logging when on Cloud Run (K_SERVICE set): utils.cloud_logging
        worker_log_json=_flag(env.get("CELERY_GCP_WORKER_LOG_JSON")),
    )
    return out


def _flag(raw: str | None) -> bool | None:
    if raw is None or not raw.strip():
        return None
    return raw.strip().lower() in ("1", "true", "yes", "on")


class Settings(MutableMapping[str, Any]):
    """The app's configuration: user changes over the ``config_from_object`` sources (read
    through, as in Celery) over defaults.

    Example::

        app.conf.update(task_default_queue="default", timezone="Europe/Paris")
        app.conf.task_always_eager = True
        app.conf["CELERY_ALWAYS_EAGER"]     # old names read the new keys
    """

    def __init__(self, changes: Mapping[str, Any], defaults: Mapping[str, Any],
                 sources: Sequence[Source] = ()) -> None:
        set_ = object.__setattr__
        set_(self, "_changes", {_new_key(k): v for k, v in changes.items()})
        set_(self, "_defaults", dict(defaults))
        #: The ``config_from_object`` sources, read through (as Celery): between the defaults
        #: and the changes, later sources over earlier ones.
        set_(self, "_sources", list(sources))
        set_(self, "_values", {})
        #: Bumped on every change (here or in a source), so derived objects (the queue router,
        #: the send path's caches) know to rebuild. A plain attribute: a warm send reads it
        #: without entering this module, unless a source is live (see _LiveSettings).
        set_(self, "version", 0)
        self._merge()
        if self._sources:
            set_(self, "__class__", _LiveSettings)

    def _merge(self) -> None:
        # Reads are on the send path: one dict holds the current value of every setting.
        values = dict(self._defaults)
        for source in self._sources:
            values.update((_new_key(k), v) for k, v in source.values.items())
        values.update(self._changes)
        object.__setattr__(self, "_values", values)

    def _bump(self) -> None:
        counter = self.__dict__  # the instance's own, also under _LiveSettings' property
        counter["version"] += 1

    def _sync(self) -> None:
        """Take in what changed in the live sources since they were last read."""
        changed = False
        for source in self._sources:
            changed = source.changed() or changed  # each changed source reads again
        if changed:
            self._merge()
            self._bump()


    def add_source(self, source: Source) -> None:
        """Put ``source`` (already read) over the others: the keys it sets win over earlier
        writes too, as a later ``config_from_object`` does."""
        values = {_new_key(k) for k in source.values}
        for key in values & self._changes.keys():
            del self._changes[key]
        self._sources.append(source)
        self._merge()
        self._bump()
        object.__setattr__(self, "__class__", _LiveSettings)

    def __getitem__(self, key: str) -> Any:
        if self._sources:
            self._sync()
        try:
            return self._values[key]
        except KeyError:
            return self._values[OLD_TO_NEW[key]]

    def __setitem__(self, key: str, value: Any) -> None:
        key = _new_key(key)
        self._changes[key] = value
        self._values[key] = value
        self._bump()

    def __delitem__(self, key: str) -> None:
        key = _new_key(key)
        del self._changes[key]
        self._merge()
        self._bump()

    def __iter__(self) -> Iterator[str]:
        if self._sources:
            self._sync()
        return iter(self._values)

    def __len__(self) -> int:
        if self._sources:
            self._sync()
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        if self._sources:
            self._sync()
        return isinstance(key, str) and _new_key(key) in self._values

    def __getattr__(self, key: str) -> Any:
        if key.startswith("_"):
            raise AttributeError(key)
        if self._sources:
            self._sync()
        try:
            return self._values[key]
        except KeyError:
            pass
        if key not in OLD_TO_NEW:
            raise AttributeError(f"no setting named {key!r}")
        return self._values[OLD_TO_NEW[key]]

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    @property
    def changes(self) -> dict[str, Any]:
        """The settings the user set (in sources too, as they are now), by new name."""
        if self._sources:
            self._sync()
        keys = set(self._changes).union(*(map(_new_key, s.values) for s in self._sources))
        return {k: v for k, v in self._values.items() if k in keys}

    def table(self) -> dict[str, Any]:
        """Every setting with its current value."""
        return dict(self.items())

    def __repr__(self) -> str:
        return f"<Settings: {len(self._changes)} changed>"


class _LiveSettings(Settings):
    """Settings with ``config_from_object`` sources: reading :attr:`version` first takes in
    what changed in them, so the send path sees a source's new values on its next call."""

    @property
    def version(self) -> int:
        """The settings' version, after taking in what changed in the sources."""
        self._sync()
        version: int = self.__dict__["version"]
        return version


class PendingSettings(Settings):
    """``app.conf`` before the settings are loaded, as in Celery: writes (``update``, item and
    attribute assignment, ``setdefault``) are kept for the load, where they override every
    source; the first read loads the settings, which fires ``on_after_configure``.

    So the usual Celery module works: ``app.conf.update(...)`` at import, then
    ``@app.on_after_configure.connect`` handlers that run when the settings are first used.
    """

    def __init__(self, writes: dict[str, Any], load: Callable[[], Settings],
                 loaded: Callable[[], Settings | None]) -> None:
        object.__setattr__(self, "_writes", writes)
        object.__setattr__(self, "_load", load)
        object.__setattr__(self, "_loaded", loaded)  # the settings, once loaded

    def __getattr__(self, key: str) -> Any:
        return getattr(self._load(), key)

    @property
    def version(self) -> int:
        """The loaded settings' version (loads them)."""
        version: int = self._load().version
        return version

    @property
    def changes(self) -> dict[str, Any]:
        """The loaded settings' changes (loads them)."""
        changes: dict[str, Any] = self._load().changes
        return changes

    def __setattr__(self, key: str, value: Any) -> None:
        self[key] = value

    def __getitem__(self, key: str) -> Any:
        return self._load()[key]

    def __setitem__(self, key: str, value: Any) -> None:
        settings = self._loaded()
        if settings is not None:  # loaded since this object was handed out
            settings[key] = value
        else:
            self._writes[key] = value

    def __delitem__(self, key: str) -> None:
        del self._load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._load())

    def __len__(self) -> int:
        return len(self._load())

    def __contains__(self, key: object) -> bool:
        return key in self._load()

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Keep ``default`` for ``key`` unless a write already set it (no load)."""
        settings = self._loaded()
        if settings is not None:
            return settings.setdefault(key, default)
        return self._writes.setdefault(key, default)

    def __repr__(self) -> str:
        return "<Settings: not loaded yet>"


def _new_key(key: str) -> str:
    return OLD_TO_NEW.get(key, key)



def detect_mixed_names(keys: set[str]) -> None:
    """Raise :class:`ImproperlyConfigured` if ``keys`` mix old and new setting names.

    As in Celery: whichever style most keys use wins, a key given in both styles is not a
    conflict, and the error lists the renames that would make the configuration consistent.
    """
    old = {k for k in keys if k in OLD_TO_NEW}
    new = {k for k in keys if k in NEW_TO_OLD}
    if not old or not new:
        return
    if len(old) > len(new):
        left = {k: NEW_TO_OLD[k] for k in new if NEW_TO_OLD[k] not in keys}
    else:
        left = {k: OLD_TO_NEW[k] for k in old if OLD_TO_NEW[k] not in keys}
    if left:
        renames = "\n".join(f"    {k!r:<40} -> {v!r}" for k, v in sorted(left.items()))
        raise ImproperlyConfigured(
            "The configuration mixes old (upper-case, Celery < 4) and new setting names. "
            f"Rename these so it uses one style:\n{renames}"
        )
