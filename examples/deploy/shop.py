"""A small shop's tasks, configured for Google Cloud: what ``celery-gcp deploy plan`` reads.

From this directory, print every gcloud command that puts it on Google Cloud (queues, jobs,
service accounts, IAM roles, the Cloud Run service built from the Dockerfile here)::

    celery-gcp -A shop deploy plan --service shop-worker

The container runs ``celery-gcp -A shop worker``, which serves the task endpoints on ``$PORT``.
Task names are given explicitly, so they are the same whichever way the module is imported.
"""

from __future__ import annotations

from celery_gcp import Celery
from celery_gcp.schedules import crontab

app = Celery("shop")
app.conf.update(
    gcp_project="my-shop-prod",
    gcp_location="europe-west1",
    # The Cloud Run URL of the service: https://SERVICE-PROJECT_NUMBER.REGION.run.app
    task_base_url="https://shop-worker-123456789012.europe-west1.run.app",
    # Signs the OIDC token of every task and job; the worker accepts only this identity.
    gcp_service_account="shop-tasks@my-shop-prod.iam.gserviceaccount.com",
    timezone="Europe/Paris",
    task_default_queue="default",
    task_routes={"shop.send_receipt": "emails"},
    gcp_queues={
        "emails": {"rate_limit": "10/s", "max_attempts": 5, "min_backoff": 2,
                   "max_backoff": 300},
    },
    beat_schedule={
        "nightly-sales-report": {"task": "shop.sales_report",
                                 "schedule": crontab(minute=0, hour=2), "args": ("daily",)},
        "weekly-cleanup": {"task": "shop.cleanup", "schedule": crontab(minute=30, hour=3,
                                                                       day_of_week="sun"),
                           "enabled": False},
    },
)


@app.task(name="shop.send_receipt", rate_limit="10/s")
def send_receipt(order_id: int, email: str) -> str:
    """Email the receipt of an order."""
    return f"receipt for order {order_id} sent to {email}"


@app.task(name="shop.sales_report")
def sales_report(period: str) -> str:
    """Build the sales report of a period."""
    return f"{period} sales report built"


@app.task(name="shop.cleanup")
def cleanup() -> int:
    """Delete abandoned carts; returns how many."""
    return 0
