"""A bounded, thread-safe LRU: the forges' caches of blobs, trees and file lists."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class LRU(Generic[K, V]):
    """A thread-safe LRU bounded by entry count and, optionally, by total size."""

    def __init__(self, max_entries: int, max_size: int | None = None) -> None:
        self.max_entries = max_entries
        self.max_size = max_size
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: K) -> tuple[bool, V | None]:
        with self._lock:
            hit = self._data.get(key)
            if hit is None:
                return False, None
            self._data.move_to_end(key)
            return True, hit[0]

    def put(self, key: K, value: V, size: int = 1) -> None:
        if self.max_size is not None and size > self.max_size // 4:
            return  # one huge value would evict everything else
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._size -= old[1]
            self._data[key] = (value, size)
            self._size += size
            while self._data and (
                len(self._data) > self.max_entries
                or (self.max_size is not None and self._size > self.max_size)
            ):
                _, (_, dropped) = self._data.popitem(last=False)
                self._size -= dropped

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._size = 0

    def __len__(self) -> int:
        return len(self._data)
