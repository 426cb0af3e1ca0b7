"""A TCP proxy on loopback between the daemon and a server, which a test can cut.

``cut()`` resets every open connection and refuses new ones (accepted, then closed at once)
until ``restore()``: what a network partition with RSTs looks like to the client.
``strand()`` silently drops everything on the connections open now and keeps them open, while
new connections pass: a half-open connection (a NAT or firewall that forgot it), where only
a read timeout tells the client.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class CuttableProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self._listener = socket.create_server((host, 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._stranded: set[socket.socket] = set()
        self._cut = False
        self._closed = False
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            sockets, self._open = self._open, set()
        for sock in sockets:
            _reset(sock)

    def strand(self) -> None:
        with self._lock:
            self._stranded |= self._open
            self._open = set()

    def restore(self) -> None:
        with self._lock:
            self._cut = False

    def close(self) -> None:
        self._closed = True
        self.cut()
        with self._lock:
            stranded, self._stranded = self._stranded, set()
        for sock in stranded:
            _reset(sock)
        with contextlib.suppress(OSError):
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                cut = self._cut
            if cut:
                _reset(client)
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                _reset(client)
                continue
            server.settimeout(None)
            with self._lock:
                self._open.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if src not in self._stranded:
                    dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with self._lock:
                    self._open.discard(sock)
                _reset(sock)


def _reset(sock: socket.socket) -> None:
    # SO_LINGER 0: close sends an RST, as a dropped route or a firewall would.
    # shutdown() first: close() alone does not wake a pump thread blocked in recv().
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
