"""Crash points for crash tests (threats 30, 31); disarmed unless a test arms one.

A crash test starts bodega with BODEGA_TEST_CRASH_AT=<point>; when the process reaches that
point it kills itself with SIGKILL, as a power cut or the OOM killer would, and the test
restarts it and checks that nothing partial became visible. Disarmed, a point costs one
comparison.
"""

import os
import signal
from collections.abc import Mapping
from typing import ClassVar

from bodega.errors import ConfigError

ENV_VAR = "BODEGA_TEST_CRASH_AT"

# In the order a cold file or page passes them.
FILE_POINTS = (
    "file_spooling",  # some bytes in the spool file, the download still running
    "file_spooled",  # every byte in the spool, not yet verified
    "file_committed",  # verified and renamed into the blob store, no database row yet
    "file_recorded",  # database row written, the last byte not yet sent to any client
)
PAGE_POINTS = (
    "page_fetched",  # upstream's page parsed, not yet stored
    "page_stored",  # stored in the database, not yet sent to the client
)

# `bodega migrate`: a blob copied and verified, the rest not yet (a run interrupted).
MIGRATE_POINTS = ("migrate_blob_copied",)


class CrashPoints:
    DISARMED: ClassVar["CrashPoints"]

    def __init__(self, armed: str | None) -> None:
        if armed is not None and armed not in FILE_POINTS + PAGE_POINTS + MIGRATE_POINTS:
            raise ConfigError(f"{ENV_VAR}: no crash point named {armed!r}")
        self._armed = armed

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> "CrashPoints":
        return cls(environ.get(ENV_VAR) or None)

    def reached(self, point: str) -> None:
        if point == self._armed:
            os.kill(os.getpid(), signal.SIGKILL)


CrashPoints.DISARMED = CrashPoints(None)
