"""The shared argument checks: normal forms, refusals, and messages that name field, value and what is accepted."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hypergpu_lab import checks
from hypergpu_lab.errors import ConfigError


def test_integer_accepts_numpy_ints_and_returns_a_python_int() -> None:
    n = checks.integer("n", np.int64(3), low=1)

    assert n == 3 and type(n) is int


@pytest.mark.parametrize("value", [True, False, 2.0, "2", None, 0, 11])
def test_integer_refuses_bools_floats_strings_and_out_of_range(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^n: got .*; accepted: an integer in \[1, 10\]$") as info:
        checks.integer("n", value, low=1, high=10)

    assert info.value.field == "n" and info.value.value is value


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, True, "0.5", None])
def test_number_refuses_non_finite_bools_and_strings(value: object) -> None:
    with pytest.raises(ConfigError, match=r"^x: got "):
        checks.number("x", value)


def test_number_bounds_open_and_closed_and_their_message() -> None:
    assert checks.number("x", np.float32(0.5), 0, 1, open_low=True, open_high=True) == 0.5
    assert checks.number("x", 1, 0, 1) == 1.0
    with pytest.raises(ConfigError, match=r"accepted: a finite number > 0 and < 1$"):
        checks.number("x", 1, 0, 1, open_low=True, open_high=True)
    with pytest.raises(ConfigError, match=r"accepted: a finite number >= 0.5$"):
        checks.number("x", 0.25, 0.5)


def test_caller_wording_and_hint_replace_the_generated_ones() -> None:
    with pytest.raises(ConfigError, match=r"^loss: got 1.0; accepted: a probability in \[0, 1\) \(never delivers\)$"):
        checks.number("loss", 1.0, 0, 1, open_high=True, accepted="a probability in [0, 1)", hint="never delivers")


def test_choice_lists_every_option_in_order() -> None:
    assert checks.choice("mode", "b", ("a", "b")) == "b"
    with pytest.raises(ConfigError, match=r"^mode: got 'c'; accepted: one of a, b$"):
        checks.choice("mode", "c", ("a", "b"))


def test_boolean_refuses_truthy_strings() -> None:
    assert checks.boolean("flag", False) is False
    with pytest.raises(ConfigError, match=r"^flag: got 'false'; accepted: true or false$"):
        checks.boolean("flag", "false")


def test_optional_passes_none_and_says_none_would_do() -> None:
    assert checks.optional(checks.integer, "k", None, low=1) is None
    assert checks.optional(checks.integer, "k", 2, low=1) == 2
    with pytest.raises(ConfigError, match=r"^k: got 0; accepted: an integer >= 1, or None$"):
        checks.optional(checks.integer, "k", 0, low=1)


def test_mapping_of_str_needs_string_keys() -> None:
    assert checks.mapping_of_str("opts", {"a": 1}) == {"a": 1}
    for bad in ({1: "a"}, [("a", 1)], None):
        with pytest.raises(ConfigError, match=r"^opts: "):
            checks.mapping_of_str("opts", bad)


def test_node_ids_single_empty_and_bad_members() -> None:
    assert checks.node_ids("nodes", 3, single=True) == (3,)
    assert checks.node_ids("nodes", [np.int64(2), 0]) == (2, 0)
    assert checks.node_ids("nodes", ()) == ()
    with pytest.raises(ConfigError, match="at least one node id"):
        checks.node_ids("nodes", (), empty=False)
    with pytest.raises(ConfigError, match=r"^nodes: got '12'"):
        checks.node_ids("nodes", "12")
    with pytest.raises(ConfigError, match=r"^nodes: got -1; accepted: node ids"):
        checks.node_ids("nodes", [0, -1])
    with pytest.raises(ConfigError, match=r"^nodes: got 3"):
        checks.node_ids("nodes", 3)  # a bare id only where single=True says so
