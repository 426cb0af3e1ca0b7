"""fast_init: the same constructor as the dataclass's, and a class it cannot serve refused."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import pytest

from sync.frozen import fast_init
from sync.model import Checkpoint, Position, RowChange, Upsert


@fast_init
@dataclass(frozen=True, slots=True, order=True)
class _Point:
    x: int
    y: int = 7
    label: str = field(default="", compare=False)


def test_positional_keyword_and_default_arguments_as_the_dataclass_takes_them() -> None:
    assert _Point(1) == _Point(x=1, y=7)
    assert _Point(1, 2, "a") == _Point(label="b", y=2, x=1)  # label is not compared
    assert (_Point(1, 2).x, _Point(1, 2).y, _Point(1, 2).label) == (1, 2, "")
    assert _Point(1, 2) < _Point(1, 3)
    with pytest.raises(TypeError):
        _Point()  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        _Point(1, z=3)  # type: ignore[call-arg]


def test_instances_stay_frozen_hashable_and_replaceable() -> None:
    point = _Point(1, 2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        point.x = 5  # type: ignore[misc]
    assert hash(point) == hash(_Point(1, 2, "other"))
    assert dataclasses.replace(point, y=9) == _Point(1, 9)


def test_the_models_it_serves_build_as_before() -> None:
    position = Position("binlog.000001", 4, "0-1-2")
    assert (position.file, position.pos, position.gtid) == ("binlog.000001", 4, "0-1-2")
    assert Position("binlog.000001", 4) == position
    change = RowChange("aurora", "users", "insert", None, {"id": 1}, None)  # type: ignore[arg-type]
    assert change.position is None
    assert change.image == {"id": 1}
    assert Upsert(None, ("id",), (1,), {"id": 1}, ("id",)).resets == ()  # type: ignore[arg-type]
    assert Checkpoint(position).position is position


def test_classes_it_cannot_serve_are_refused() -> None:
    @dataclass(slots=True)
    class Mutable:
        x: int

    @dataclass(frozen=True, slots=True)
    class Factory:
        x: list[int] = field(default_factory=list)

    @dataclass(frozen=True, slots=True)
    class After:
        x: int

        def __post_init__(self) -> None:
            pass

    @dataclass(frozen=True)
    class NoSlots:
        x: int

    @dataclass(frozen=True, slots=True)
    class WithInitVar:
        x: int
        scale: dataclasses.InitVar[int] = 1

    @dataclass(frozen=True, slots=True)
    class Shadowing:
        _fi_s0: int

    for cls in (Mutable, Factory, After, NoSlots, WithInitVar, Shadowing):
        with pytest.raises(TypeError):
            fast_init(cls)
