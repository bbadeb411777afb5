"""Self-heal: notice when someone else edits or deletes a file in the watched directory.

Only top-level config names matter: Traefik reads nothing else as configuration, and the
directory also holds `access.log` and `acme.json`, which change all the time and must not
wake the sidecar.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import watchfiles

from traefik_gen.writer import CONFIG_EXTENSIONS

__all__ = ["DirectoryWatcher"]

logger = logging.getLogger(__name__)


class DirectoryWatcher:
    """Calls `on_change(names)` with the top-level config files of the directory that changed."""

    def __init__(self, out: Path, on_change: Callable[[set[str]], None]) -> None:
        # watchfiles reports absolute, resolved paths; compare with the same form.
        self._out = out.resolve()
        self._on_change = on_change
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="directory-watch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        changes = watchfiles.watch(
            self._out,
            watch_filter=self._is_config,
            recursive=False,
            debounce=100,
            # The watch wakes every `step` ms even when idle: 250 keeps an idle sidecar cheap
            # and still heals a foreign edit within half a second.
            step=250,
            stop_event=self._stop,
            raise_interrupt=False,
            rust_timeout=1000,
        )
        try:
            for batch in changes:
                names = {Path(path).name for _, path in batch}
                logger.debug("directory changed: %d files", len(names))
                self._on_change(names)
        except OSError as exc:
            logger.warning("stopped watching %s for edits: %s", self._out, exc)

    def _is_config(self, _change: watchfiles.Change, path: str) -> bool:
        candidate = Path(path)
        return candidate.parent == self._out and candidate.suffix.lower() in CONFIG_EXTENSIONS
