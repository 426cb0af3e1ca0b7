"""A cheaper ``__init__`` for frozen, slotted dataclasses built once or more per row change.

A frozen dataclass stores each field through ``object.__setattr__``, because its own
``__setattr__`` refuses writes: 1.1 µs for seven fields against 0.24 µs unfrozen (Python
3.11). The stream builds about eight such values per one-row transaction (the change, its
positions, the target operations, the checkpoint), which was 5% of its time. The
``__init__`` made here stores each field through its slot's own descriptor instead, which
bypasses the refusal at about half the cost; the class stays frozen to everything else.

Only what these classes use is supported: plain fields with or without a plain default,
no ``default_factory``, ``InitVar``, ``init=False`` field or ``__post_init__``; the
decorator refuses anything else, so a later change to a class cannot be silently skipped.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, TypeVar

T = TypeVar("T")


def fast_init(cls: type[T]) -> type[T]:
    """Replace the generated ``__init__`` of the frozen, slotted dataclass ``cls``; the
    signature (names, order, defaults) stays the same."""
    params = getattr(cls, "__dataclass_params__", None)
    if params is None or not params.frozen or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} must be a frozen dataclass with slots")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__, which fast_init does not call")
    fields = dataclasses.fields(cls)  # type: ignore[arg-type]
    # InitVar pseudo-fields and the like are parameters but not fields: refused here.
    generated = list(inspect.signature(cls.__init__).parameters)[1:]
    if generated != [item.name for item in fields]:
        raise TypeError(f"{cls.__name__}: __init__ takes {generated}, not just its fields")
    namespace: dict[str, Any] = {}
    args, body = [], []
    for index, item in enumerate(fields):
        plain = item.init and not item.kw_only and item.default_factory is dataclasses.MISSING
        # Defaults and setters reach the code as namespace entries, never as text; a field
        # name is checked to be a plain identifier that cannot shadow one of them.
        shadows = item.name == "self" or item.name.startswith("_fi_")
        if not plain or shadows or not item.name.isidentifier():
            raise TypeError(f"{cls.__name__}.{item.name}: only plain fields are supported")
        if item.default is dataclasses.MISSING:
            args.append(item.name)
        else:
            namespace[f"_fi_d{index}"] = item.default
            args.append(f"{item.name}=_fi_d{index}")
        namespace[f"_fi_s{index}"] = getattr(cls, item.name).__set__
        body.append(f"    _fi_s{index}(self, {item.name})")
    source = f"def __init__(self, {', '.join(args)}):\n" + "\n".join(body or ["    pass"])
    exec(source, namespace)  # noqa: S102 - fixed text; names checked, values by reference
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__doc__ = cls.__init__.__doc__
    cls.__init__ = init  # type: ignore[method-assign]
    return cls


__all__ = ["fast_init"]
