from celery_gcp import shared_task


@shared_task
def discovered(x: int) -> int:
    return x * 10
