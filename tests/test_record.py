"""bblogin._record gives bblogin's records what dataclasses gave them: each behaviour checked
against a dataclass declared the same way."""

from __future__ import annotations

import copy
import dataclasses
import pickle
from collections import namedtuple

import pytest

from bblogin import _record
from bblogin._record import FrozenInstanceError, field, record

Pair = namedtuple("Pair", "a b")


def _declare(decorator, make_field, frozen: bool):  # the same class, once per implementation
    @decorator(frozen=frozen)
    class Inner:
        x: int

    @decorator(frozen=frozen)
    class Outer:
        name: str
        count: int = 0
        tags: list[str] = make_field(default_factory=list)
        note: str | None = make_field(default=None, compare=False)
        inner: Inner | None = None
        pairs: tuple[Pair, ...] = ()

        def label(self) -> str:
            return f"{self.name}:{self.count}"

    return Inner, Outer


@pytest.mark.parametrize("frozen", [True, False])
def test_a_record_behaves_as_the_dataclass_declared_the_same_way(frozen: bool) -> None:
    ours = _declare(record, field, frozen)
    theirs = _declare(dataclasses.dataclass, dataclasses.field, frozen)
    for (inner, outer), replace, asdict in ((ours, _record.replace, _record.asdict), (theirs, dataclasses.replace, dataclasses.asdict)):
        a = outer("a", 2, ["t"], "n", inner(1), (Pair(1, 2),))
        assert repr(a).split("Outer(", 1)[1] == "name='a', count=2, tags=['t'], note='n', inner=" + repr(inner(1)) + ", pairs=(Pair(a=1, b=2),))"
        assert a == outer("a", 2, ["t"], "other note", inner(1), (Pair(1, 2),))  # note: compare=False
        assert a != outer("a", 3, ["t"]) and a != ("a", 2)
        assert outer("b").tags == [] and outer("b").tags is not outer("b").tags and outer("b").count == 0
        assert outer(name="c", count=5).label() == "c:5"
        assert asdict(a) == {"name": "a", "count": 2, "tags": ["t"], "note": "n", "inner": {"x": 1}, "pairs": (Pair(1, 2),)}
        assert asdict(a)["tags"] is not a.tags
        b = replace(a, count=9)
        assert (b.count, b.name, b.tags) == (9, "a", ["t"]) and a.count == 2
        assert outer.__match_args__ == ("name", "count", "tags", "note", "inner", "pairs")
        assert copy.deepcopy(a) == a
        with pytest.raises(TypeError):
            outer()  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            outer("a", bogus=1)  # type: ignore[call-arg]
        with pytest.raises(TypeError):
            outer("a", name="b")  # type: ignore[misc]
        with pytest.raises(TypeError):
            replace(a, bogus=1)
        if frozen:
            assert hash(inner(1)) == hash((1,))  # the fields that compare, as a tuple
            with pytest.raises(FrozenInstanceError if outer is ours[1] else dataclasses.FrozenInstanceError):
                a.count = 3  # type: ignore[misc]
            with pytest.raises(AttributeError):
                del a.count  # type: ignore[misc]
        else:
            assert outer.__hash__ is None
            a.count = 3
            assert a.count == 3
    assert [f.name for f in _record.fields(ours[1])] == [f.name for f in dataclasses.fields(theirs[1])]
    assert [f.compare for f in _record.fields(ours[1])] == [f.compare for f in dataclasses.fields(theirs[1])]


@record(frozen=True)
class Kept:
    value: int
    secret: str = field(default="", repr=False)

    def __repr__(self) -> str:  # a record's own __repr__ is kept, as dataclasses keeps it
        return f"Kept({self.value})"


@record
class Derived:
    raw: str
    length: int = 0

    def __post_init__(self) -> None:
        if not self.length:
            self.length = len(self.raw)


def test_own_methods_post_init_and_pickling_are_kept() -> None:
    assert repr(Kept(1, "s")) == "Kept(1)"
    assert pickle.loads(pickle.dumps(Kept(1, "s"))) == Kept(1, "s")
    assert Derived("abc").length == 3 and _record.replace(Derived("abc"), raw="de", length=0).length == 2
    assert "secret" not in repr(record(type("Bare", (), {"__annotations__": {"secret": "str"}, "secret": field(default="x", repr=False)}))())
    with pytest.raises(ValueError, match="default_factory"):
        record(type("Bad", (), {"__annotations__": {"items": "list"}, "items": []}))
    with pytest.raises(TypeError, match="follows default"):
        record(type("Bad", (), {"__annotations__": {"a": "int", "b": "int"}, "a": 1}))
    with pytest.raises(TypeError):
        _record.asdict(Kept)
