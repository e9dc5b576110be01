"""A small memo of pure computations keyed by the content of their arrays.

One ``extract()`` scores the same kernel on the same held-out pixels at the same noise
level more than once: the kept candidate when it was chosen, again as the widest rung of
the window ladder, and again on the noise path of the final fit (whose first level is
often the one the methods worked with). Each score is a masked fit of seconds on a large
grid. Passing the scores along would tie the pipeline's steps together through their
results (``info``); a memo keyed by what the fit reads keeps the steps apart and returns
the identical numbers.

``functools.lru_cache`` needs hashable arguments, and arrays are not; the key here is a
digest of each array's bytes, shape and dtype (BLAKE2b, 16 bytes), so an equal array
built anew (a slice, a copy) hits the entry and a changed one never does.
"""

from __future__ import annotations

import functools
import hashlib
import threading
from collections import OrderedDict

import numpy as np

__all__ = ["content_memo", "digest"]


def digest(value) -> object:
    """A hashable key of ``value``: arrays by their content, other values as they are."""
    if isinstance(value, np.ndarray):
        a = np.ascontiguousarray(value)
        h = hashlib.blake2b(a.view(np.uint8).ravel(), digest_size=16)
        return ("array", a.shape, a.dtype.str, h.digest())
    return value


def _copied(result):
    """Arrays of a result copied, so that no caller can change what the memo holds."""
    if isinstance(result, np.ndarray):
        return result.copy()
    if isinstance(result, tuple):
        return tuple(_copied(r) for r in result)
    return result


def content_memo(maxsize: int = 16):
    """Decorator: memoise a pure function of arrays and plain values, the ``maxsize``
    most recent calls (thread-safe; napari runs extraction in a worker thread)."""

    def wrap(func):
        entries: OrderedDict = OrderedDict()
        lock = threading.Lock()

        @functools.wraps(func)
        def memoised(*args, **kwargs):
            key = (tuple(digest(a) for a in args),
                   tuple(sorted((k, digest(v)) for k, v in kwargs.items())))
            with lock:
                if key in entries:
                    entries.move_to_end(key)
                    return _copied(entries[key])
            result = func(*args, **kwargs)
            with lock:
                entries[key] = _copied(result)
                while len(entries) > maxsize:
                    entries.popitem(last=False)
            return result

        memoised.cache_clear = entries.clear
        return memoised

    return wrap
