"""``self.add_to_chord(sig)`` as Celery users call it, through the emulator and a served worker
with the memory store: the body waits for the added member and gets its result after the
header's; a redelivered adder adds once; what cannot be added is refused at the call."""

from __future__ import annotations

from typing import Any

import pytest

from celery_gcp import Celery, chord
from celery_gcp.exceptions import NoResultBackendError

from ..calls import Calls
from ..shared_emulator import SharedEmulator
from .test_replace import served


def adders(app: Celery, calls: Calls) -> None:
    """proj.adder (adds double(x * 10) to its chord) and proj.not_member."""
    double = app.tasks["proj.double"]

    @app.task(name="proj.adder", bind=True)
    def adder(self: Any, x: int) -> int:
        self.add_to_chord(double.s(x * 10))
        return x

    @app.task(name="proj.lazy_adder", bind=True)
    def lazy_adder(self: Any, x: int) -> int:
        sig = self.add_to_chord(double.s(x * 100), lazy=True)
        sig.delay()
        return x

    @app.task(name="proj.misuse", bind=True)
    def misuse(self: Any) -> list[str]:
        errors = []
        for call in (lambda: self.add_to_chord(double.s(1)),):
            try:
                call()
            except ValueError as exc:
                errors.append(str(exc))
        calls.record("misuse", errors)
        return errors


def test_the_body_waits_for_added_members_and_gets_their_results_after_the_headers(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=adders) as (app, calls, _):
        header = [app.tasks["proj.adder"].s(1), app.tasks["proj.double"].s(2),
                  app.tasks["proj.lazy_adder"].s(3)]
        result = chord(header, app.tasks["proj.record"].s(), app=app).apply_async()
        result.get(timeout=60)
    recorded = [v for name, v in calls.calls if name == "record"]
    assert len(recorded) == 1
    values = recorded[0]
    assert values[:3] == [1, 4, 3]  # the header's, in order
    assert sorted(values[3:]) == [20, 600]  # then the added members', in the order added


def test_a_redelivered_adder_adds_its_member_once(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    def define(app: Celery, calls: Calls) -> None:
        adders(app, calls)

    header_ids: set[str] = {"adder-once"}
    with served(module_emulator, monkeypatch, redeliver=header_ids, more=define) as (
            app, calls, emu):
        header = [app.tasks["proj.adder"].s(5).set(task_id="adder-once"),
                  app.tasks["proj.double"].s(1)]
        result = chord(header, app.tasks["proj.record"].s(), app=app).apply_async()
        assert result.get(timeout=60) is None
        emu.wait_idle()
    assert [v for name, v in calls.calls if name == "record"] == [[5, 2, 100]]
    assert [v for name, v in calls.calls if name == "double"].count(50) == 1


def test_what_cannot_be_added_is_refused_at_the_call(
        module_emulator: SharedEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    with served(module_emulator, monkeypatch, more=adders) as (app, calls, _):
        app.tasks["proj.misuse"].delay().get(timeout=60)
    errors = calls.calls[0][1]
    assert "is not a member of a chord's header" in errors[0]
    no_store = Celery("proj", task_always_eager=True)

    @no_store.task(bind=True)
    def lonely(self: Any) -> None:
        self.add_to_chord(lonely.s())

    with pytest.raises(NoResultBackendError, match="needs a result store"):
        lonely.delay().get()
