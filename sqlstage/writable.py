"""Can sqlstage write where it must (asked before a run changes anything), and one writer
at a time in a folder.

A run that changes a database writes its log as it goes and status.json at the end. A folder
without write permission, a file where a folder should be (or the reverse) or a full disk
found only then would leave a changed database behind a traceback; checked first, it is one
line (exit 2) and nothing has changed.

The check writes and removes a probe file, because permission bits do not tell the whole
story: root ignores them, a read-only mount or a full disk does not show in them.
"""

from __future__ import annotations

import errno
import os
import stat
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlstage.errors import FileAccessError, Locked

#: what the probe writes: a full disk refuses a block, even when it still takes a new name.
#: One block, not the file's size, and no fsync (local file systems reserve the space at
#: write), so the check costs a fraction of a millisecond; a disk with a block left but not a
#: file's worth is still found later, when the file is written, and is one line then too.
PROBE_BYTES = 4096


def reason(error: OSError) -> str:
    """`Permission denied`, `No space left on device`: the system's words, without the path."""
    return error.strerror or errno.errorcode.get(error.errno or 0, "") or type(error).__name__


def check_file(path: Path, what: str, setting: str) -> None:
    """`path` can be replaced through a temp file in its folder: it is a regular file we may
    read and write, or absent; and its folder takes a new file.

    `what` names the file in the message (`status.json`), `setting` is the sqlstage.toml key
    that puts it there (`status_file`).
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        info = None
    except OSError as err:
        raise FileAccessError(f"cannot use {what} {path}: {reason(err)}", fix_for(err)) from err
    if info is not None:
        if not stat.S_ISREG(info.st_mode):
            raise FileAccessError(
                f"{what} {path} is a {_kind(info.st_mode)}, not a file", _elsewhere(setting)
            )
        if not os.access(path, os.R_OK | os.W_OK):
            can_read = os.access(path, os.R_OK)
            raise FileAccessError(
                f"{what} {path} is {'read-only' if can_read else 'not readable'}",
                "make it readable and writable (chmod u+rw): sqlstage rewrites it after changes",
            )
    check_folder(path.parent, f"the folder of {what}", setting)


def check_folder(folder: Path, what: str, setting: str, size: int = PROBE_BYTES) -> None:
    """A file of `size` bytes can be written in `folder`, or, while it does not exist yet,
    in the nearest folder above it (where the run will create it). Nothing is left behind.

    `what` names the folder in the message (`log_dir`), `setting` is its sqlstage.toml key."""
    existing = folder
    while not _exists(existing) and existing.parent != existing:
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            raise FileAccessError(f"{what} {folder} is a file, not a folder", _elsewhere(setting))
        raise FileAccessError(
            f"{what} {folder} cannot be created: {existing} is a file", _elsewhere(setting)
        )
    try:
        _probe(existing, size)
    except OSError as err:
        message = f"cannot write in {what} {folder}: {reason(err)}"
        raise FileAccessError(message, fix_for(err)) from err


def fix_for(error: OSError) -> str:
    """What to do about a file system error, in a few words."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return "free space on its disk"
    if error.errno == errno.EROFS:
        return "it is on a read-only file system: run sqlstage from a writable checkout"
    return "give the user running sqlstage write permission there"


def _elsewhere(setting: str) -> str:
    return f"move it out of the way, or set {setting} in sqlstage.toml to another path"


def _probe(folder: Path, size: int) -> None:
    import tempfile  # only for the probe: its import (random, shutil) is most of the cost

    handle, name = tempfile.mkstemp(dir=folder, prefix=".sqlstage-probe-", suffix=".tmp")
    try:
        block = b"\0" * size
        while block:
            block = block[os.write(handle, block) :]
    finally:
        os.close(handle)
        Path(name).unlink(missing_ok=True)


def _exists(path: Path) -> bool:
    try:
        path.lstat()
    except FileNotFoundError:
        return False
    except OSError:  # a file in the middle of the path (NotADirectoryError) and the like
        return False
    return True


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "folder"
    if stat.S_ISFIFO(mode):
        return "named pipe"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    return "special file"


#: how long a writer waits for another's turn (a rewrite of status.json takes milliseconds)
FOLDER_LOCK_WAIT_SECONDS = 30.0


@contextmanager
def folder_lock(
    folder: Path, writing: str, wait_seconds: float = FOLDER_LOCK_WAIT_SECONDS
) -> Iterator[None]:
    """Hold an exclusive `flock` on `folder` (created if missing) while `writing` a file in it.

    The folder, not the file: the file is replaced by a rename, so a lock on it would be on
    an inode the next writer no longer opens; and a lock file would be one more stray file
    in the user's repository. The operating system drops the lock when the process dies.
    """
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as err:
        raise FileAccessError(
            f"cannot write {folder / writing}: {reason(err)}", fix_for(err)
        ) from err
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise Locked(
                        f"another process has held the lock on {folder} for "
                        f"{wait_seconds:g} s while writing {writing}",
                        "find it (`fuser` or `lsof` on the folder) and let it finish",
                    ) from None
                time.sleep(0.005)
            except OSError as err:
                if err.errno not in _NO_FLOCK:
                    raise FileAccessError(f"cannot lock {folder}: {reason(err)}") from err
                break  # a file system without flock (some network mounts): atomic, unlocked
        yield
    finally:
        os.close(handle)  # releases the lock


_NO_FLOCK = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL}
