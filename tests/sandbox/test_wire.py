"""The plain-data codec: what the trusted side decodes is builtin data, whatever was sent."""

from __future__ import annotations

import collections
import json
import math

import pytest

from grpo_env.sandbox.runtime import wire


def roundtrip(value):
    return wire.decode(json.loads(wire.dumps({"v": wire.encode(value)}))["v"])


@pytest.mark.parametrize(
    "value",
    [
        None,
        True,
        0,
        -(2**80),
        2**200 + 1,
        1.5,
        -0.0,
        "héllo\n\ud800",
        b"\x00\xff",
        bytearray(b"ab"),
        [1, [2, [3]]],
        (1, "a", (2.5,)),
        {1: "a", (1, 2): [3], "k": {"n": None}},
        {1, 2, 3},
        frozenset({"a"}),
        3 + 4j,
        range(1, 10, 2),
    ],
)
def test_roundtrip_keeps_type_and_value(value):
    back = roundtrip(value)
    assert back == value
    assert type(back) is type(value)


def test_non_finite_floats():
    assert math.isnan(roundtrip(float("nan")))
    assert roundtrip(float("inf")) == float("inf")
    assert roundtrip(float("-inf")) == float("-inf")


def test_subclasses_become_their_builtin_value_ignoring_overrides():
    class AlwaysInt(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    class AlwaysList(list):
        def __eq__(self, other):
            return True

        def __iter__(self):
            return iter([99])

    point = collections.namedtuple("Point", "x y")(1, 2)
    assert type(roundtrip(AlwaysInt(3))) is int and roundtrip(AlwaysInt(3)) == 3
    assert roundtrip(AlwaysInt(3)) != 4
    assert roundtrip(AlwaysList([1, 2])) == [1, 2]
    assert roundtrip(point) == (1, 2) and type(roundtrip(point)) is tuple
    assert type(roundtrip(collections.Counter("aab"))) is dict


def test_other_objects_become_references_or_raise():
    class Thing:
        pass

    refs = []
    encoded = wire.encode([Thing()], lambda obj: refs.append(obj) or len(refs) - 1)
    assert encoded == [
        {"$": "ref", "v": 0, "type": "test_other_objects_become_references_or_raise.<locals>.Thing"}
    ]
    with pytest.raises(wire.NotData):
        wire.encode(Thing())
    with pytest.raises(wire.ProtocolError):
        wire.decode(encoded[0])  # no resolver: a reference is not data
    assert wire.decode(encoded[0], lambda ref, name: ("resolved", ref)) == ("resolved", 0)


@pytest.mark.parametrize(
    "data",
    [
        {"$": "nope", "v": 1},
        {"plain": "dict"},
        {"$": "int", "v": "zz"},
        {"$": "float", "v": "1.5"},
        {"$": "dict", "v": [[1]]},
        {"$": "dict", "v": [[[1], 2]]},
        {"$": "set", "v": [[1]]},
        {"$": "bytes", "v": "!!"},
        {"$": "complex", "v": ["a", 1]},
        {"$": "range", "v": [1, 2]},
        {"$": "tuple", "v": "abc"},
    ],
)
def test_malformed_values_are_protocol_errors(data):
    with pytest.raises(wire.ProtocolError):
        wire.decode(data)


def test_deep_nesting_is_refused_not_a_crash():
    deep = []
    for _ in range(2000):
        deep = [deep]
    with pytest.raises(wire.ProtocolError):
        wire.decode(deep)
    with pytest.raises(wire.NotData):
        wire.encode(deep)


@pytest.mark.parametrize("line", [b"[1, 2]", b"not json", b'{"a": ', b"\xff\xfe", b"1"])
def test_loads_accepts_only_objects(line):
    with pytest.raises(wire.ProtocolError):
        wire.loads(line)


def test_line_reader_refuses_oversized_lines():
    import os

    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"x" * 5000)
    os.close(write_fd)
    reader = wire.LineReader(read_fd, max_bytes=1000)
    reader.feed()
    with pytest.raises(wire.ProtocolError):
        reader.pop_line()
    os.close(read_fd)


def test_dumps_is_one_ascii_line():
    line = wire.dumps({"s": "a\nb\u2028é\ud800"})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert line.isascii()
    assert wire.loads_trusted(line[:-1]) == {"s": "a\nb\u2028é\ud800"}
