"""ThumbnailLoader: face thumbnails read in the io lane on demand, newest request first, kept in a small LRU.

Why newest first: when the examiner flings through 50,000 faces, the rows that scrolled past are no
longer wanted; serving the last requests first (and dropping the oldest beyond a bound) keeps the
visible page filling in immediately. Decoding to QImage happens in the worker; only the cheap
QImage -> QPixmap step runs on the GUI thread.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QImage, QPixmap

from sketchface_desktop.ops import Runner
from sketchface_desktop.ops import galleries as gallery_ops

Fetch = Callable[[], bytes | QImage | None]
MAX_PENDING = 300
MAX_IN_FLIGHT = 2


class ThumbnailLoader(QObject):
    """Lazy thumbnail cache.

    Signals:
        ready(object): the thumbnail for this key is now in the cache (or known to be absent).
    """

    ready = Signal(object)

    def __init__(self, hub: Runner, capacity: int = 1500, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.hub = hub
        self.capacity = capacity
        self._cache: OrderedDict[Hashable, QPixmap | None] = OrderedDict()
        self._pending: OrderedDict[Hashable, Fetch] = OrderedDict()
        self._in_flight: set[Hashable] = set()

    def get(self, key: Hashable, fetch: Fetch) -> QPixmap | None:
        """The cached pixmap, or None after queuing ``fetch`` (``ready`` fires when it arrives)."""
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        if key not in self._in_flight:
            self._pending[key] = fetch
            self._pending.move_to_end(key)
            while len(self._pending) > MAX_PENDING:
                self._pending.popitem(last=False)
            self._pump()
        return None

    def known(self, key: Hashable) -> bool:
        return key in self._cache

    def invalidate(self, predicate: Callable[[Hashable], bool] | None = None) -> None:
        """Forget cached thumbnails (all, or those whose key matches), e.g. after a re-import."""
        for key in [k for k in self._cache if predicate is None or predicate(k)]:
            del self._cache[key]

    def _pump(self) -> None:
        while self._pending and len(self._in_flight) < MAX_IN_FLIGHT:
            key, fetch = self._pending.popitem(last=True)
            self._in_flight.add(key)
            self._fetch(key, fetch)

    def _fetch(self, key: Hashable, fetch: Fetch) -> None:
        """One thumbnail read in the io lane; failure shows as "no thumbnail", never as an error dialog."""
        gallery_ops.thumbnail("thumbnail", lambda: _decode(fetch())).success(
            lambda img: self._arrived(key, img)).failure(lambda _exc: self._arrived(key, None)).finished(
            lambda _job: self._settled(key)).run(self.hub)

    def _arrived(self, key: Hashable, image: QImage | None) -> None:
        pixmap = QPixmap.fromImage(image) if image is not None and not image.isNull() else None
        self._cache[key] = pixmap
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)
        self.ready.emit(key)

    def _settled(self, key: Hashable) -> None:
        self._in_flight.discard(key)
        self._pump()

    def pending_count(self) -> int:
        return len(self._pending) + len(self._in_flight)


def _decode(data: Any) -> QImage | None:
    if data is None:
        return None
    if isinstance(data, QImage):
        return data
    image = QImage()
    image.loadFromData(bytes(data))
    return image if not image.isNull() else None

