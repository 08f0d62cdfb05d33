"""What a worker serves without a token: no task list (OpenAPI, /docs, /redoc) unless opted in
(``worker_docs``); ``celery-gcp dev``, on the developer's machine, serves it."""

from __future__ import annotations

import httpx
import pytest

from celery_gcp import Celery
from celery_gcp.dev import DevStack
from celery_gcp.testing import serve

DOC_PATHS = ("/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect")


def secret_app(**settings: object) -> Celery:
    app = Celery("docs", task_auth="oidc", gcp_service_account="tasks@p.iam.gserviceaccount.com",
                 **settings)

    @app.task(name="docs.charge_card")
    def charge_card(customer_id: int, amount_cents: int) -> None:
        """Charge the customer's card on file."""

    return app


def test_deployed_worker_serves_no_task_list_without_opt_in() -> None:
    app = secret_app()
    with serve(app.asgi_app()) as url:
        answers = {path: httpx.get(url + path) for path in DOC_PATHS}
        # A task path and an unknown one answer alike: neither says which tasks exist.
        known = httpx.get(f"{url}/_tasks/docs.charge_card")
        unknown = httpx.get(f"{url}/_tasks/docs.no_such_task")
    for path, answer in answers.items():
        assert answer.status_code == 404, path
        assert b"charge" not in answer.content, path
    assert (known.status_code, known.content) == (unknown.status_code, unknown.content)


@pytest.mark.parametrize("opt_in", ["setting", "environment", "argument"])
def test_worker_docs_opt_in_serves_the_task_list(opt_in: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    if opt_in == "environment":
        monkeypatch.setenv("CELERY_GCP_WORKER_DOCS", "1")
    app = secret_app(**({"worker_docs": True} if opt_in == "setting" else {}))
    with serve(app.asgi_app(docs=True if opt_in == "argument" else None)) as url:
        spec = httpx.get(f"{url}/openapi.json")
        pages = [httpx.get(url + path).status_code for path in ("/docs", "/redoc")]
    assert spec.status_code == 200
    operation = spec.json()["paths"]["/_tasks/docs.charge_card"]["post"]
    assert operation["description"] == "Charge the customer's card on file."
    assert pages == [200, 200]


def test_dev_serves_the_task_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOUD_TASKS_EMULATOR_HOST", raising=False)
    monkeypatch.delenv("CLOUD_SCHEDULER_EMULATOR_HOST", raising=False)
    app = secret_app()
    with DevStack(app, port=0) as stack:
        spec = httpx.get(f"{stack.url}/openapi.json")
        docs = httpx.get(f"{stack.url}/docs")
    assert spec.status_code == 200
    assert "/_tasks/docs.charge_card" in spec.json()["paths"]
    assert docs.status_code == 200
