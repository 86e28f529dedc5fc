"""Serving HTTPS so that a failed TLS handshake is seen: by whom, and why.

The event loops (asyncio's and uvloop's alike) run a server's TLS handshakes before the
application hears of a connection, and report a failed one nowhere outside their debug mode:
an ssl.SSLError is an OSError, which they leave unreported, and the application's protocol is
never told. So this site accepts connections itself and hands each to the loop's public
`connect_accepted_socket(..., ssl=...)`, which runs the same handshake and raises its error
where the client's address is known. A connection whose handshake succeeds is aiohttp's, as
with the loop's own server.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_SECONDS = 60.0  # the loops' own default
ACCEPT_RETRY_SECONDS = 1.0  # after the process ran out of file descriptors, as asyncio waits

HandshakeFailed = Callable[[str | None, ssl.SSLError], None]  # (client address, the error)


class TLSSite(web.TCPSite):
    def __init__(self, runner: web.BaseRunner, host: str | None, port: int, *,
                 ssl_context: ssl.SSLContext, on_failure: HandshakeFailed,
                 backlog: int = 128, reuse_port: bool = False) -> None:
        super().__init__(runner, host, port, ssl_context=ssl_context, backlog=backlog,
                         reuse_port=reuse_port)
        self._on_failure = on_failure

    async def start(self) -> None:
        await web.BaseSite.start(self)  # registered with the runner; the listening is ours
        serve, context = self._runner.server, self._ssl_context
        assert serve is not None and context is not None
        sockets = _listening_sockets(self._host, self._port, self._backlog,
                                     reuse_port=bool(self._reuse_port))
        listener = _Listener(sockets, serve, context, self._on_failure)
        self._server = listener  # type: ignore[assignment]  # BaseSite.stop() closes it
        self._bound_port = listener.port


def _listening_sockets(host: str | None, port: int, backlog: int, *,
                       reuse_port: bool) -> list[socket.socket]:
    """Bound and listening, as the loop's create_server() makes them: one per address the host
    names (all interfaces for none), IPv6 ones for IPv6 only, the address reusable at once,
    and the port shared with the other workers when `reuse_port` (SO_REUSEPORT)."""
    sockets: list[socket.socket] = []
    addresses = dict.fromkeys(socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                 flags=socket.AI_PASSIVE))
    try:
        for family, kind, proto, _, address in addresses:
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except OSError:
        for sock in sockets:
            sock.close()
        raise
    return sockets


class _Listener:
    """Accepts connections on its sockets and runs each one's TLS handshake in a task."""

    def __init__(self, sockets: list[socket.socket], serve: Callable[[], asyncio.Protocol],
                 context: ssl.SSLContext, on_failure: HandshakeFailed) -> None:
        self._sockets, self._serve = sockets, serve
        self._context, self._on_failure = context, on_failure
        self.port = sockets[0].getsockname()[1]
        self.handshakes: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        self._accepting = [loop.create_task(self._accept(sock), name="santamon-tls-accept")
                           for sock in sockets]

    async def _accept(self, listening: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(listening)
            except OSError as exc:  # EMFILE and the like: the connection waits in the backlog
                log.error("cannot accept a connection (retrying in %gs): %s",
                          ACCEPT_RETRY_SECONDS, exc)
                await asyncio.sleep(ACCEPT_RETRY_SECONDS)
                continue
            task = loop.create_task(self._handshake(conn, address[0]))
            self.handshakes.add(task)
            task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, conn: socket.socket, client: str) -> None:
        try:
            await asyncio.get_running_loop().connect_accepted_socket(
                self._serve, conn, ssl=self._context,
                ssl_handshake_timeout=HANDSHAKE_TIMEOUT_SECONDS)
        except ssl.SSLError as exc:
            self._on_failure(client, exc)
        except (OSError, TimeoutError):  # the client went away, or never finished
            pass

    def close(self) -> None:
        """Stop accepting; handshakes still running are abandoned (their clients retry)."""
        for task in [*self._accepting, *self.handshakes]:
            task.cancel()
        for sock in self._sockets:
            with contextlib.suppress(OSError):
                sock.close()
