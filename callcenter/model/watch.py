"""The model as the long-running parts see it: re-read when the file changes (``callcenter operators add`` or an
edit), so a new operator or line is known without a restart. A file that no longer validates is reported and the
last good model kept: a typo must not stop the call log or the IVR."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from callcenter.model.hotline import HotlineModel, ModelError, load

log = logging.getLogger(__name__)


class ModelWatch:
    """The current model of one file; thread-safe."""

    def __init__(self, path: Path, model: HotlineModel | None = None) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = self._stat()
        self._model = model or load(path)

    def _stat(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except OSError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def current(self) -> HotlineModel:
        """The model as the file says now (or the last valid one)."""
        stamp = self._stat()
        with self._lock:
            if stamp != self._stamp:
                self._stamp = stamp
                try:
                    self._model = load(self.path)
                    log.info("telephony model reloaded from %s", self.path)
                except ModelError as error:
                    log.error("%s; keeping the previous model", error)
            return self._model
