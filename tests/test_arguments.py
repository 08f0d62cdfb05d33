"""Typed at the call site: binding, validation with the worker's rules, exact round trips."""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any

import pytest
from fastapi import Depends, Request
from pydantic import BaseModel

from celery_gcp import Celery
from celery_gcp.arguments import Arguments
from celery_gcp.exceptions import ImproperlyConfigured, TaskArgumentError


class Colour(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1


class Point(BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    name: str
    size: Decimal


def round_trip(fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """What the function receives at the worker, by parameter name."""
    spec = Arguments(fn, "t")
    call_args, call_kwargs = spec.call_args(spec.decode(spec.encode(args, kwargs)))
    return dict(inspect.signature(fn).bind(*call_args, **call_kwargs).arguments)


def test_values_round_trip_exactly() -> None:
    def t(when: datetime, day: date, span: timedelta, ident: uuid.UUID, amount: Decimal,
          colour: Colour, level: Level, point: Point, box: Box, items: list[int],
          pair: tuple[int, str], raw: bytes, ratio: float) -> None: ...

    paris = timezone(timedelta(hours=1))
    values = dict(
        when=datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=paris), day=date(2026, 1, 2),
        span=timedelta(days=1, microseconds=5), ident=uuid.uuid4(), amount=Decimal("1.10"),
        colour=Colour.BLUE, level=Level.LOW, point=Point(x=1, y=2),
        box=Box("b", Decimal("0.30")), items=[1, 2], pair=(1, "a"), raw="é text".encode(),
        ratio=float("inf"),
    )
    kwargs = round_trip(t, **values)
    assert kwargs == values
    assert kwargs["when"].utcoffset() == timedelta(hours=1)
    assert type(kwargs["pair"]) is tuple
    assert type(kwargs["colour"]) is Colour
    assert type(kwargs["level"]) is Level
    assert str(kwargs["amount"]) == "1.10"


def test_dicts_are_accepted_where_models_are_expected() -> None:
    def t(point: Point) -> None: ...

    kwargs = round_trip(t, {"x": "1", "y": 2})
    assert kwargs == {"point": Point(x=1, y=2)}


def test_naive_datetime_stays_naive() -> None:
    def t(when: datetime) -> None: ...

    moment = datetime(2026, 1, 1, 12, 0)
    assert round_trip(t, moment) == {"when": moment}


def test_wrong_type_fails_naming_argument_and_problem() -> None:
    def add(x: int, y: int) -> int: ...

    with pytest.raises(TaskArgumentError) as info:
        Arguments(add, "proj.add").encode((1,), {"y": "abc"})
    message = str(info.value)
    assert "proj.add()" in message
    assert "'y'" in message
    assert "valid integer" in message
    assert isinstance(info.value, TypeError)


def test_nested_errors_name_the_path() -> None:
    def t(point: Point) -> None: ...

    with pytest.raises(TaskArgumentError, match=r"argument 'point' at y: .*valid integer"):
        Arguments(t, "t").encode(({"x": 1, "y": "no"},), {})


def test_missing_and_extra_arguments_fail_like_celery() -> None:
    def add(x: int, y: int) -> int: ...

    spec = Arguments(add, "proj.add")
    with pytest.raises(TaskArgumentError, match="missing a required argument: 'y'"):
        spec.encode((1,), {})
    with pytest.raises(TaskArgumentError, match="unexpected keyword argument 'z'"):
        spec.encode((1, 2), {"z": 3})
    with pytest.raises(TaskArgumentError, match="too many positional arguments"):
        spec.encode((1, 2, 3), {})


def test_unannotated_arguments_must_be_plain_json() -> None:
    def t(data, other=None):  # type: ignore[no-untyped-def]
        ...

    spec = Arguments(t, "proj.t")
    assert json.loads(spec.encode(({"a": [1, 2.5, None, True, "s"]},), {})) == {
        "data": {"a": [1, 2.5, None, True, "s"]}
    }
    with pytest.raises(TaskArgumentError) as info:
        spec.encode(({"when": datetime.now(UTC)},), {})
    assert "'data'" in str(info.value)
    assert "datetime" in str(info.value)
    assert "Annotate it" in str(info.value)
    with pytest.raises(TaskArgumentError, match="'other'"):
        spec.encode((1,), {"other": Colour.RED})
    with pytest.raises(TaskArgumentError, match="'data'"):
        spec.encode((Level.LOW,), {})  # an IntEnum would silently become a plain int
    with pytest.raises(TaskArgumentError, match="'data'"):
        spec.encode(({1: "non-string key"},), {})


def test_unannotated_tuple_arrives_as_list_like_celery_json() -> None:
    def t(data):  # type: ignore[no-untyped-def]
        ...

    assert round_trip(t, (1, 2)) == {"data": [1, 2]}


def test_unserialisable_annotated_value_fails_at_the_call_site() -> None:
    def t(value: list[Any]) -> None: ...

    with pytest.raises(TaskArgumentError, match="'value'"):
        Arguments(t, "t").encode(([object()],), {})


def test_binary_bytes_fail_naming_the_argument() -> None:
    def t(label: str, raw: bytes) -> None: ...

    with pytest.raises(TaskArgumentError, match=r"argument 'raw' .*base64"):
        Arguments(t, "t").encode(("x", b"\x00\xff"), {})


def test_positional_only_varargs_and_varkw() -> None:
    def t(a: int, /, b: int, *rest: int, flag: bool = False, **extra: str) -> None: ...

    spec = Arguments(t, "t")
    args, kwargs = spec.call_args(spec.decode(spec.encode((1, 2, 3, 4), {"flag": True,
                                                                        "colour": "red"})))
    assert args == (1, 2, 3, 4)
    assert kwargs == {"flag": True, "colour": "red"}
    with pytest.raises(TaskArgumentError, match="'rest'"):
        Arguments(t, "t").encode((1, 2, "x"), {})


def test_keywords_for_var_keyword_are_sent_when_nothing_is_required() -> None:
    def t(x: int = 1, **extra: str) -> None: ...

    spec = Arguments(t, "t")
    sent = spec.encode((), {"note": "<script>alert(1)</script>"})
    assert json.loads(sent) == {"extra": {"note": "<script>alert(1)</script>"}}
    assert spec.call_args(spec.decode(sent)) == ((), {"note": "<script>alert(1)</script>"})
    with pytest.raises(TaskArgumentError, match="multiple values for argument 'x'"):
        spec.encode((2,), {"x": 3})


def test_defaults_are_left_to_the_function() -> None:
    def t(x: int, y: int = 5) -> None: ...

    spec = Arguments(t, "t")
    assert json.loads(spec.encode((1,), {})) == {"x": 1}


def get_db() -> str:
    return "db"


def test_dependencies_are_not_message_arguments() -> None:
    def t(x: int, request: Request, db: str = Depends(get_db),
          other: Annotated[str, Depends(get_db)] = "") -> None: ...

    spec = Arguments(t, "t")
    assert list(spec.signature.parameters) == ["x"]
    assert [p.name for p in spec.dependencies] == ["request", "db", "other"]
    assert json.loads(spec.encode((1,), {})) == {"x": 1}


def test_typing_false_skips_validation_but_keeps_json_rules() -> None:
    def t(x: int) -> None: ...

    spec = Arguments(t, "t", typed=False)
    assert json.loads(spec.encode(("not an int",), {})) == {"x": "not an int"}
    with pytest.raises(TaskArgumentError):
        spec.encode((datetime.now(UTC),), {})


def test_unresolvable_annotation_is_a_clear_error() -> None:
    def t(x: UndefinedType) -> None:  # type: ignore[name-defined]  # noqa: F821
        ...

    with pytest.raises(ImproperlyConfigured, match="typing=False"):
        Arguments(t, "t")


class Opaque:
    pass


def test_type_pydantic_cannot_handle_is_a_clear_error() -> None:
    def t(x: Opaque) -> None: ...

    with pytest.raises(ImproperlyConfigured, match="pydantic cannot validate"):
        Arguments(t, "t")


def test_task_delay_validates_before_sending(app: Celery, sent: list[Any]) -> None:
    @app.task
    def add(x: int, y: int) -> int:
        return x + y

    with pytest.raises(TaskArgumentError, match="'y'"):
        add.delay(1, "two")  # type: ignore[arg-type]
    assert sent == []
    add.delay(1, "2")  # type: ignore[arg-type]  # lax, as the worker is: "2" is a valid int
    assert json.loads(sent[0].body) == {"x": 1, "y": 2}


def test_bound_task_self_is_not_an_argument(app: Celery, sent: list[Any]) -> None:
    @app.task(bind=True)
    def t(self: Any, x: int) -> int:
        return x

    t.delay(3)
    assert json.loads(sent[0].body) == {"x": 3}


def test_call_args_follow_the_signature() -> None:
    def t(a: int, b: int = 0, c: int = 0, *, d: int = 0) -> None: ...

    spec = Arguments(t, "t")
    assert spec.call_args({"a": 1, "b": 2, "d": 4}) == ((1, 2), {"d": 4})
    # c given without b: from the gap on, parameters go by name.
    assert spec.call_args({"a": 1, "c": 3}) == ((1,), {"c": 3})


def test_merge_replaces_args_or_kwargs_like_retry() -> None:
    def t(a: int, b: int = 0, *, flag: bool = False) -> None: ...

    spec = Arguments(t, "t")
    assert spec.merge((1, 2), {"flag": True}, None, None) == ((1, 2), {"flag": True})
    assert spec.merge((1, 2), {"flag": True}, (5,), None) == ((5,), {"flag": True})
    assert spec.merge((1, 2), {"flag": True}, None, {"flag": False}) == ((1, 2), {"flag": False})
    assert spec.merge((1, 2), {}, None, {"b": 9}) == ((1,), {"b": 9})
    assert spec.merge((1, 2), {}, (7,), {"b": 9}) == ((7,), {"b": 9})


def test_any_annotation_carries_plain_json_only() -> None:
    def t(value: Any, anything: object = None) -> None: ...

    spec = Arguments(t, "t")
    assert json.loads(spec.encode(([1, {"a": None}],), {})) == {"value": [1, {"a": None}]}
    with pytest.raises(TaskArgumentError, match="'value'"):
        spec.encode((date(2026, 1, 1),), {})
    with pytest.raises(TaskArgumentError, match="'anything'"):
        spec.encode((1,), {"anything": uuid.uuid4()})


def test_non_string_dict_keys_say_how_to_fix() -> None:
    def t(data):  # type: ignore[no-untyped-def]
        ...

    with pytest.raises(TaskArgumentError, match=r"the key 1, .*dict\[int, \.\.\.\]"):
        Arguments(t, "t").encode(({1: "a"},), {})


def test_annotated_non_string_keys_round_trip() -> None:
    def t(data: dict[int, str]) -> None: ...

    assert round_trip(t, {1: "a"}) == {"data": {1: "a"}}


def test_a_dependency_between_parameters_shifts_the_rest_to_keywords() -> None:
    def t(x: int, db: str = Depends(get_db), y: int = 0) -> None: ...

    spec = Arguments(t, "t")
    # y follows a dependency: passed by name, or it would land on db.
    assert spec.call_args({"x": 1, "y": 2}) == ((1,), {"y": 2})
