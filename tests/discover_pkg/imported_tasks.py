from celery_gcp import shared_task


@shared_task(name="imported.via_setting")
def via_setting() -> str:
    return "imported"
