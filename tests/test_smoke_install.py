"""What the smoke installs once under .build/smoke (the proxy's virtualenv, Prisma's packages) is
installed by one installer at a time: environments rehearsed side by side, and the tests beside
them, would otherwise build the same directory at once."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from modules.rehearsal.smoke.deployment import installing


def test_installers_of_one_directory_take_turns(tmp_path: Path) -> None:
    spans: list[tuple[float, float]] = []

    def install() -> None:
        with installing(tmp_path / "smoke" / "engines"):
            began = time.monotonic()
            time.sleep(0.2)
            spans.append((began, time.monotonic()))

    threads = [threading.Thread(target=install) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    spans.sort()
    assert len(spans) == 3
    assert all(earlier[1] <= later[0] for earlier, later in zip(spans, spans[1:])), spans
