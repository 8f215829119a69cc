"""Who runs sqlstage: `user@host`, as the history rows, the log and the connection's
application name record it."""

from __future__ import annotations

import getpass
import socket


def current_user() -> str:
    """`user@host`, as recorded in the history table and the log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"
