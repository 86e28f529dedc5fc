"""`santamon serve --workers N`: N server processes on one port, and the process that
supervises them.

Each worker is a `santamon serve` of its own (its own event loop, database pool and
scheduler) whose listening socket sets SO_REUSEPORT, so the kernel spreads new connections
over the workers. The supervisor only starts, restarts and stops them:

- SIGTERM or SIGINT to it: every worker gets SIGTERM and stops gracefully (in-flight requests
  finish, the store commits and closes); a worker still running after STOP_TIMEOUT_SECONDS is
  killed, and the supervisor then exits 1, else 0.
- A worker that exits on its own is started again at once, so one crash never takes the
  others' connections down. A crash loop (more than RESTART_LIMIT exits within
  RESTART_WINDOW_SECONDS: the database refuses connections, the port is taken) stops every
  worker and exits 1, so that systemd's Restart= and start limits see the failure.
- The supervisor dying in any way (even SIGKILL) sends each worker SIGTERM (Linux's parent
  death signal): no worker outlives it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

# Within systemd's TimeoutStopSec (30 s in config/santamon.service): a worker needs up to 10 s
# for in-flight requests and 10 s for running jobs.
STOP_TIMEOUT_SECONDS = 25.0
RESTART_LIMIT = 5
RESTART_WINDOW_SECONDS = 60.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def check_port_free(host: str, port: int) -> None:
    """Raise OSError if something already listens on host:port. Workers share the port with
    SO_REUSEPORT, which would also let them share it silently with a forgotten server of the
    same user; this check, made once before any worker starts, refuses that instead."""
    for family, kind, proto, _, address in socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE):
        with socket.socket(family, kind, proto) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)


def die_with_supervisor(supervisor_pid: int) -> None:
    """In a worker: have the kernel send SIGTERM when the supervisor dies, and leave at once
    if it already has."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        log.warning("cannot ask to be stopped with the supervisor: %s",
                    os.strerror(ctypes.get_errno()))
    if os.getppid() != supervisor_pid:  # it died before the request above took effect
        raise SystemExit("santamon: the supervisor is gone; not starting")


@dataclass
class _Worker:
    number: int
    process: asyncio.subprocess.Process
    started: float


class Supervisor:
    def __init__(self, count: int, command: Callable[[int], list[str]]) -> None:
        """`command(n)` is worker n's command line (n counts from 1)."""
        self._count = count
        self._command = command
        self._workers: dict[int, _Worker] = {}
        self._exits: deque[float] = deque()
        self._stop = asyncio.Event()
        self._failed = False

    async def run(self) -> int:
        """Run the workers until told to stop or a crash loop; returns the exit code."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._stop.set)
        try:
            for number in range(1, self._count + 1):
                await self._start(number)
            stopping = asyncio.ensure_future(self._stop.wait())
            while not self._stop.is_set():
                exits = {asyncio.ensure_future(worker.process.wait()): worker
                         for worker in self._workers.values()}
                done, _ = await asyncio.wait([stopping, *exits],
                                             return_when=asyncio.FIRST_COMPLETED)
                for waiter in exits.keys() - done:
                    waiter.cancel()
                if self._stop.is_set():  # workers stopping on a Ctrl-C of their own
                    break
                for waiter in done & exits.keys():
                    await self._exited(exits[waiter])
            stopping.cancel()
        finally:
            await self._stop_all()
        return 1 if self._failed else 0

    async def _start(self, number: int) -> None:
        process = await asyncio.create_subprocess_exec(*self._command(number),
                                                       stdin=subprocess.DEVNULL)
        self._workers[number] = _Worker(number, process, time.monotonic())
        log.info("started worker %d (pid %d)", number, process.pid)

    async def _exited(self, worker: _Worker) -> None:
        code = worker.process.returncode
        how = f"was killed by signal {-code}" if code is not None and code < 0 else \
            f"exited with code {code}"
        now = time.monotonic()
        self._exits.append(now)
        while self._exits and self._exits[0] < now - RESTART_WINDOW_SECONDS:
            self._exits.popleft()
        if len(self._exits) > RESTART_LIMIT:
            log.error("worker %d (pid %d) %s after %.0f s; %d workers ended within %.0f s: "
                      "stopping the service", worker.number, worker.process.pid, how,
                      now - worker.started, len(self._exits), RESTART_WINDOW_SECONDS)
            self._failed = True
            self._stop.set()
            return
        log.error("worker %d (pid %d) %s after %.0f s; starting it again", worker.number,
                  worker.process.pid, how, now - worker.started)
        await self._start(worker.number)

    async def _stop_all(self) -> None:
        running = [w.process for w in self._workers.values() if w.process.returncode is None]
        for process in running:
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if not running:
            return
        _, late = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in running],
                                     timeout=STOP_TIMEOUT_SECONDS)
        if late:
            log.error("%d worker(s) still running %.0f s after SIGTERM: killing them",
                      len(late), STOP_TIMEOUT_SECONDS)
            self._failed = True
            for process in running:
                if process.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
            await asyncio.wait(late)
        for process in running:
            # 0 after a graceful stop; -SIGTERM if it was still starting up
            if process.returncode not in (0, -signal.SIGTERM, -signal.SIGKILL):
                log.error("worker (pid %d) stopped with code %s", process.pid,
                          process.returncode)
                self._failed = True
