"""Records: bblogin's one way to declare a typed record (``@record``, ``@record(frozen=True)``).

What ``dataclasses`` gives the records bblogin declares — ``__init__`` with defaults and
``field(default_factory=…)``, ``__repr__``, ``__eq__`` over the fields that compare, ``__hash__``
for frozen records (None for mutable ones), ``__match_args__``, ``__post_init__``, frozen
assignment refused, and ``replace``/``asdict``/``fields`` — without importing ``dataclasses``:
that import pulls in ``inspect``, ``ast``, ``dis``, ``tokenize`` and ``re``, and creating a
dataclass ``exec``s generated code, together a whole Python start-up on a cached kubectl or git
call (docs/architecture.md, "Records"). Nothing is generated or ``exec``ed here: one ``__init__``
per record reads the field table. Type checkers see ``typing.dataclass_transform``, so fields are
checked as for a dataclass.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar, dataclass_transform, overload

    T = TypeVar("T")

FIELDS = "__record_fields__"  # the class attribute holding a record's fields, in order


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """Assigning to (or deleting) a field of a frozen record."""


class Field:
    """One field of a record: its name, default or default factory, and whether it takes part in
    comparison (``==``, ``hash``) and in ``repr``."""

    __slots__ = ("name", "default", "default_factory", "compare", "repr")

    def __init__(self, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, compare: bool = True, repr: bool = True) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default, self.default_factory, self.compare, self.repr = default, default_factory, compare, repr

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r}, compare={self.compare}, repr={self.repr})"


def field(*, default: Any = MISSING, default_factory: Callable[[], Any] | Any = MISSING, compare: bool = True, repr: bool = True) -> Any:
    """A field's options, as ``dataclasses.field`` takes them (the ones bblogin uses)."""
    return Field(default, default_factory, compare, repr)


def _own_fields(cls: type) -> list[Field]:
    out = []
    for name, annotation in cls.__dict__.get("__annotations__", {}).items():
        if isinstance(annotation, str) and annotation.replace("typing.", "").startswith("ClassVar"):
            continue
        value = cls.__dict__.get(name, MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        if isinstance(spec.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(spec.default)} for field {name} is not allowed: use default_factory")
        spec.name = name
        if isinstance(value, Field):  # the class attribute is the default, as dataclasses leaves it
            if spec.default is MISSING:
                delattr(cls, name)
            else:
                setattr(cls, name, spec.default)
        out.append(spec)
    return out


def _build(cls: type, frozen: bool) -> type:
    table: dict[str, Field] = {}
    for base in reversed(cls.__mro__[1:]):
        table.update(getattr(base, FIELDS, {}))
    for spec in _own_fields(cls):
        table[spec.name] = spec
    specs = tuple(table.values())
    seen_default = False
    for spec in specs:
        has_default = spec.default is not MISSING or spec.default_factory is not MISSING
        if seen_default and not has_default:
            raise TypeError(f"non-default argument {spec.name!r} follows default argument")
        seen_default = seen_default or has_default
    names = tuple(s.name for s in specs)
    compared = tuple(s.name for s in specs if s.compare)
    shown = tuple(s.name for s in specs if s.repr)
    post_init = getattr(cls, "__post_init__", None)
    assign = object.__setattr__ if frozen else setattr
    qualname = cls.__qualname__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(specs):
            raise TypeError(f"{qualname}.__init__() takes {len(specs) + 1} positional arguments but {len(args) + 1} were given")
        for name in kwargs:
            if name not in table:
                raise TypeError(f"{qualname}.__init__() got an unexpected keyword argument {name!r}")
        for i, spec in enumerate(specs):
            if i < len(args):
                if spec.name in kwargs:
                    raise TypeError(f"{qualname}.__init__() got multiple values for argument {spec.name!r}")
                value = args[i]
            elif spec.name in kwargs:
                value = kwargs[spec.name]
            elif spec.default is not MISSING:
                value = spec.default
            elif spec.default_factory is not MISSING:
                value = spec.default_factory()
            else:
                raise TypeError(f"{qualname}.__init__() missing 1 required argument: {spec.name!r}")
            assign(self, spec.name, value)
        if post_init is not None:
            self.__post_init__()

    def __repr__(self: Any) -> str:
        return f"{type(self).__qualname__}(" + ", ".join(f"{name}={getattr(self, name)!r}" for name in shown) + ")"

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return tuple(getattr(self, n) for n in compared) == tuple(getattr(other, n) for n in compared)

    def __hash__(self: Any) -> int:
        return hash(tuple(getattr(self, n) for n in compared))

    def __setattr__(self: Any, name: str, value: Any) -> None:
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self: Any, name: str) -> None:
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    own = cls.__dict__
    setattr(cls, FIELDS, table)
    methods: dict[str, Any] = {"__init__": __init__, "__repr__": __repr__, "__eq__": __eq__, "__match_args__": names}
    if frozen:
        methods.update(__setattr__=__setattr__, __delattr__=__delattr__)
    for name, method in methods.items():
        if name not in own:
            if callable(method):
                method.__qualname__ = f"{qualname}.{name}"
            setattr(cls, name, method)
    explicit_hash = "__hash__" in own and not (own["__hash__"] is None and "__eq__" in own)
    if not explicit_hash:  # dataclasses' rule for eq=True: hashable when frozen, unhashable when mutable
        cls.__hash__ = __hash__ if frozen else None  # type: ignore[assignment]
    return cls


if TYPE_CHECKING:

    @overload
    def record(cls: type[T], /) -> type[T]: ...
    @overload
    def record(*, frozen: bool = False) -> Callable[[type[T]], type[T]]: ...
    @dataclass_transform(field_specifiers=(field, Field))
    def record(cls: type[T] | None = None, /, *, frozen: bool = False) -> Any: ...

else:

    def record(cls=None, /, *, frozen=False):
        """Make ``cls`` a record: ``@record`` or ``@record(frozen=True)``."""
        if cls is None:
            return lambda c: _build(c, frozen)
        return _build(cls, frozen)


def fields(obj: Any) -> tuple[Field, ...]:
    """A record's (or record class's) fields, in order."""
    try:
        return tuple(getattr(obj, FIELDS).values())
    except AttributeError:
        raise TypeError("must be called with a record type or instance") from None


def is_record(obj: Any) -> bool:
    return hasattr(type(obj) if not isinstance(obj, type) else obj, FIELDS)


def replace(obj: T, /, **changes: Any) -> T:
    """A copy of record ``obj`` with ``changes``, made through ``__init__`` (``__post_init__`` runs)."""
    values = {spec.name: getattr(obj, spec.name) for spec in fields(obj)}
    values.update(changes)
    return type(obj)(**values)


def asdict(obj: Any) -> dict[str, Any]:
    """Record ``obj`` as a dict, recursing into records, lists, tuples and dicts (and copying the
    rest), as ``dataclasses.asdict`` does."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on record instances")
    return _asdict(obj)  # type: ignore[no-any-return]


_ATOMS = (str, int, float, bool, bytes, type(None))


def _asdict(value: Any) -> Any:
    if isinstance(value, _ATOMS):
        return value
    if is_record(value) and not isinstance(value, type):
        return {spec.name: _asdict(getattr(value, spec.name)) for spec in fields(value)}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return type(value)(*[_asdict(v) for v in value])
    if isinstance(value, (list, tuple)):
        return type(value)(_asdict(v) for v in value)
    if isinstance(value, dict):
        return type(value)((_asdict(k), _asdict(v)) for k, v in value.items())
    import copy  # anything else is copied, as dataclasses.asdict does

    return copy.deepcopy(value)
