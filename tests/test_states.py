"""``celery_gcp.states``: Celery's state names and sets, and comparison by precedence."""

from __future__ import annotations

import itertools
import operator
from collections.abc import Callable

import pytest
from celery import states as celery_states

from celery_gcp import states

BUILT_IN = ["PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "REVOKED", "REJECTED",
            "RETRY", "IGNORED"]


@pytest.mark.parametrize(("higher", "lower"), [
    (states.SUCCESS, states.PENDING),
    (states.FAILURE, states.RECEIVED),
    (states.REVOKED, states.STARTED),
    (states.SUCCESS, "CRASHED"),
    (states.FAILURE, "CRASHED"),
    ("CRASHED", states.REVOKED),  # a custom state outranks every built-in state but two
    ("PROGRESS", states.STARTED),
])
def test_state_compares_by_precedence(higher: str, lower: str) -> None:
    assert states.state(higher) > states.state(lower)
    assert states.state(higher) >= states.state(lower)
    assert states.state(lower) < states.state(higher)
    assert states.state(lower) <= states.state(higher)
    assert not states.state(higher) < states.state(lower)


def test_unknown_states_rank_like_custom_states() -> None:
    assert states.precedence("CRASHED") == states.precedence(states.IGNORED)
    assert states.precedence("CRASHED") == states.NONE_PRECEDENCE == states.PRECEDENCE_LOOKUP[None]
    assert states.state("CRASHED") >= states.state("PROGRESS")
    assert states.state("CRASHED") <= states.state("PROGRESS")
    assert states.state("CRASHED") != states.state("PROGRESS")  # equality is the string's


def test_state_is_the_string_for_equality_and_hashing() -> None:
    assert states.state(states.SUCCESS) == "SUCCESS"
    assert {states.state(states.SUCCESS): 1}["SUCCESS"] == 1
    assert max(map(states.state, [states.PENDING, states.SUCCESS, states.STARTED])) == "SUCCESS"
    assert sorted(map(states.state, ["SUCCESS", "PENDING", "CUSTOM"])) == [
        "PENDING", "CUSTOM", "SUCCESS"]


def test_precedence_table_and_sets_match_celery() -> None:
    assert states.PRECEDENCE == celery_states.PRECEDENCE
    assert states.PRECEDENCE_LOOKUP == celery_states.PRECEDENCE_LOOKUP
    for name in ("ALL_STATES", "READY_STATES", "UNREADY_STATES", "EXCEPTION_STATES",
                 "PROPAGATE_STATES"):
        assert getattr(states, name) == getattr(celery_states, name), name
    everyday = {"PENDING", "RECEIVED", "STARTED", "SUCCESS", "FAILURE", "RETRY", "REVOKED"}
    assert everyday == states.ALL_STATES


@pytest.mark.parametrize("compare", [operator.lt, operator.le, operator.gt, operator.ge])
def test_every_comparison_matches_celery(compare: Callable[[str, str], bool]) -> None:
    names = [*BUILT_IN, "CRASHED", "PROGRESS"]
    for left, right in itertools.product(names, repeat=2):
        ours = compare(states.state(left), states.state(right))
        assert ours == compare(celery_states.state(left), celery_states.state(right)), (
            left, right)
        # A plain string on either side compares the same way.
        assert compare(states.state(left), right) == ours
        assert compare(left, states.state(right)) == ours
    for name in names:
        assert states.precedence(name) == celery_states.precedence(name)
