"""``@record``: the part of ``@dataclasses.dataclass`` the validate engine uses, without its start-up cost.

``dataclass`` writes each class's ``__init__``/``__repr__``/``__eq__``/``__hash__`` as source and ``exec``s it:
~0.5-0.8 ms per class on this machine, ~6 ms for the engine's classes, a tenth of ``tritonrepo validate``'s
start-up. ``record`` builds the same methods from closures instead (no compilation). Supported: fields from the
class annotations in order, defaults from class attributes, :func:`factory` for mutable defaults (like
``field(default_factory=...)``), ``frozen=True`` (assignment raises ``dataclasses.FrozenInstanceError``'s base,
AttributeError; hashable by value), ``__post_init__``, keyword or positional construction, value equality and a
dataclass-style ``repr``.
"""

from __future__ import annotations

from collections.abc import Callable

_MISSING = object()


class factory:  # noqa: N801 - used like dataclasses.field
    """A default made by calling ``make()`` for each instance (``field(default_factory=make)``)."""

    __slots__ = ("make",)

    def __init__(self, make: Callable[[], object]) -> None:
        self.make = make


class FrozenRecordError(AttributeError):
    """Assignment to a field of a frozen record."""


def record(cls=None, /, *, frozen: bool = False):
    """Class decorator: a record class with the fields of the class annotations (see the module doc)."""

    def wrap(cls):
        names = tuple(cls.__dict__.get("__annotations__", {}))
        defaults = {}
        for name in names:
            if name in cls.__dict__:
                defaults[name] = cls.__dict__[name]
                if isinstance(defaults[name], factory):
                    delattr(cls, name)  # instances always get their own value
        post_init = getattr(cls, "__post_init__", None)
        setter = object.__setattr__
        count = len(names)

        def __init__(self, *args, **kwargs):  # noqa: N807
            if len(args) > count:
                raise TypeError(f"{cls.__name__}() takes {count} positional arguments but {len(args)} were given")
            for name, value in zip(names, args):
                setter(self, name, value)
            for name in names[len(args):]:
                value = kwargs.pop(name, _MISSING)
                if value is _MISSING:
                    value = defaults.get(name, _MISSING)
                    if value is _MISSING:
                        raise TypeError(f"{cls.__name__}() missing required argument: '{name}'")
                    if isinstance(value, factory):
                        value = value.make()
                setter(self, name, value)
            if kwargs:
                raise TypeError(f"{cls.__name__}() got an unexpected keyword argument '{next(iter(kwargs))}'")
            if post_init is not None:
                post_init(self)

        def __repr__(self):  # noqa: N807
            return f"{cls.__qualname__}(" + ", ".join(f"{n}={getattr(self, n)!r}" for n in names) + ")"

        def __eq__(self, other):  # noqa: N807
            if other.__class__ is not self.__class__:
                return NotImplemented
            return all(getattr(self, n) == getattr(other, n) for n in names)

        cls.__init__, cls.__repr__, cls.__eq__ = __init__, __repr__, __eq__
        cls.__record_fields__ = names
        if frozen:
            def __setattr__(self, name, value=None):  # noqa: N807 - also __delattr__
                raise FrozenRecordError(f"cannot assign to field '{name}'")

            def __hash__(self):  # noqa: N807
                return hash(tuple(getattr(self, n) for n in names))

            cls.__setattr__, cls.__delattr__, cls.__hash__ = __setattr__, __setattr__, __hash__
        else:
            cls.__hash__ = None
        return cls

    return wrap if cls is None else wrap(cls)
