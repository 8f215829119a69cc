"""A loopback proxy in front of PostgreSQL that counts round trips and reads backends' CPU.

    proxy = CountingProxy("127.0.0.1", 5432); proxy.start()
    ... a tool connects to 127.0.0.1:proxy.port ...
    proxy.reset(); <run the tool>; trips, server_cpu = proxy.totals()

A round trip is a turn of the conversation: the client sends something after the server (or
the proxy, answering an SSL request) last spoke. That is what a server 1 ms away charges a
millisecond for, however many protocol messages the turn carries (a pipeline or a
multi-statement simple query is one turn).

Server CPU: the backend's process id is in the BackendKeyData message ('K') the server sends at
start-up; just before the client's Terminate ('X') is passed on, or its socket closes, the
backend is still alive and /proc/<pid>/stat gives its utime + stime, the whole CPU it spent on
that connection. Exact per connection, and blind to other clients of the same server.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
import time

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
TICKS = os.sysconf("SC_CLK_TCK")


def backend_cpu(pid: int) -> float:
    """utime + stime of a live process, in seconds (0.0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of stat(5)


class _Link:
    """One client connection and its upstream; parses just enough framing to see K and X."""

    def __init__(self, client: socket.socket, upstream: socket.socket) -> None:
        self.client = client
        self.upstream = upstream
        self.from_client = b""
        self.from_server = b""
        self.started = False  # the startup packet (no type byte) has been passed on
        self.server_spoke = True  # so that the first client packet counts as a turn
        self.pid: int | None = None
        self.cpu_read = False


class CountingProxy:
    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.selector = selectors.DefaultSelector()
        self.lock = threading.Lock()
        self.links: dict[socket.socket, _Link] = {}
        self.trips = 0
        self.server_cpu = 0.0
        self.connections = 0
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> CountingProxy:
        self.listener.setblocking(False)
        self.selector.register(self.listener, selectors.EVENT_READ)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop = True
        self._thread.join(timeout=2)
        self.listener.close()

    def reset(self) -> None:
        with self.lock:
            self.trips, self.server_cpu, self.connections = 0, 0.0, 0

    def totals(self, settle: float = 5.0) -> tuple[int, float, int]:
        """(turns, backend CPU seconds, connections) since reset(), once every link closed."""
        deadline = time.monotonic() + settle
        while self.links and time.monotonic() < deadline:
            time.sleep(0.01)
        with self.lock:
            return self.trips, self.server_cpu, self.connections

    # -- the loop ---------------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._stop:
            for key, _ in self.selector.select(timeout=0.1):
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._pump(key.fileobj)  # type: ignore[arg-type]

    def _accept(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(self.target)
        for sock in (client, upstream):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        link = _Link(client, upstream)
        with self.lock:
            self.connections += 1
        self.links[client] = self.links[upstream] = link
        self.selector.register(client, selectors.EVENT_READ)
        self.selector.register(upstream, selectors.EVENT_READ)

    def _pump(self, sock: socket.socket) -> None:
        link = self.links.get(sock)
        if link is None:
            return
        try:
            data = sock.recv(1 << 16)
        except OSError:
            data = b""
        if not data:
            self._close(link)
            return
        if sock is link.client:
            if link.server_spoke:
                with self.lock:
                    self.trips += 1
                link.server_spoke = False
            self._from_client(link, data)
        else:
            link.server_spoke = True
            link.client.sendall(data)
            self._scan_server(link, data)

    def _from_client(self, link: _Link, data: bytes) -> None:
        link.from_client += data
        out = b""
        while True:
            buffer = link.from_client
            if not link.started:
                if len(buffer) < 8:
                    break
                length, code = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    break
                link.from_client = buffer[length:]
                if code in (SSL_REQUEST, GSSENC_REQUEST):
                    link.client.sendall(b"N")  # plain text, so the framing stays readable
                    link.server_spoke = True
                    continue
                link.started = code != CANCEL_REQUEST
                out += buffer[:length]
                continue
            if len(buffer) < 5:
                break
            length = struct.unpack("!i", buffer[1:5])[0] + 1
            if len(buffer) < length:
                break
            if buffer[:1] == b"X":
                self._read_cpu(link)
            out += buffer[:length]
            link.from_client = buffer[length:]
        if out:
            link.upstream.sendall(out)

    def _scan_server(self, link: _Link, data: bytes) -> None:
        if link.pid is not None:
            return  # only the start-up's BackendKeyData matters
        link.from_server += data
        buffer = link.from_server
        offset = 0
        if not link.started:
            return
        while len(buffer) - offset >= 5:
            kind = buffer[offset : offset + 1]
            length = struct.unpack("!i", buffer[offset + 1 : offset + 5])[0] + 1
            if len(buffer) - offset < length:
                break
            if kind == b"K":
                link.pid = struct.unpack("!i", buffer[offset + 5 : offset + 9])[0]
                link.from_server = b""
                return
            if kind == b"Z":  # ready for query without a key: nothing more to learn
                link.pid = -1
                link.from_server = b""
                return
            offset += length
        link.from_server = buffer[offset:]

    def _read_cpu(self, link: _Link) -> None:
        if link.cpu_read or link.pid is None or link.pid < 0:
            return
        link.cpu_read = True
        cpu = backend_cpu(link.pid)
        with self.lock:
            self.server_cpu += cpu

    def _close(self, link: _Link) -> None:
        self._read_cpu(link)  # the backend lives until its socket closes
        for sock in (link.client, link.upstream):
            self.links.pop(sock, None)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(sock)
            sock.close()
