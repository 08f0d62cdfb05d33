"""Checked by mypy in tests/test_typing.py: each `# E:` line must be reported, nothing else."""

from celery_gcp import Celery, Task, shared_task

app = Celery("typing")


@app.task
def add(x: int, y: int) -> int:
    return x + y


@app.task(bind=True, max_retries=2)
def greet(self: Task[..., str], name: str) -> str:
    return name


@shared_task
def double(x: int) -> int:
    return x * 2


async def use_async() -> None:
    await add.adelay(1, 2)
    await add.adelay(1, "2")  # E: arg-type


add.delay(1, 2)
add.delay(1, "2")  # E: arg-type
add.delay(1)  # E: call-arg
greet.delay("ada")
greet.delay(1)  # E: arg-type
double.delay(2)
double.delay("2")  # E: arg-type
total: int = add(1, 2)
name: int = greet("ada")  # E: assignment
