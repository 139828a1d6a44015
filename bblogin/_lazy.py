"""What a cached answer must not import, taken at first use instead.

``contextlib`` costs a cached call on the full path about a third of a Python start-up: it
imports ``collections`` and ``functools`` (measured, one run, interleaved: ``python -S -c
"import contextlib"`` 13.5 ms against 8.8 ms for ``pass``), and the modules a cached answer
imports (``_lock``, ``_index``, ``_mirrors``, ``_adhoc``) define their context managers at
import, though one whose mirrors are current enters none. :func:`contextmanager` is ``contextlib.contextmanager`` itself, applied the first time
the context manager is entered: nothing of its semantics is written here (docs/architecture.md).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from contextlib import AbstractContextManager
    from typing import ParamSpec, TypeVar

    P = ParamSpec("P")
    T = TypeVar("T")

__all__ = ["contextmanager"]


def contextmanager(func: Callable[P, Iterator[T]]) -> Callable[P, AbstractContextManager[T]]:
    """``contextlib.contextmanager(func)``, made (and contextlib imported) on the first call."""
    made: Callable[P, AbstractContextManager[T]] | None = None

    def call(*args: P.args, **kwargs: P.kwargs) -> AbstractContextManager[T]:
        nonlocal made
        if made is None:
            import contextlib

            made = contextlib.contextmanager(func)
        return made(*args, **kwargs)

    call.__name__, call.__qualname__, call.__doc__, call.__module__ = func.__name__, func.__qualname__, func.__doc__, func.__module__
    call.__wrapped__ = func  # type: ignore[attr-defined]
    return call
