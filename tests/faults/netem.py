"""A TCP proxy that delays every chunk by a random latency (order kept, as TCP keeps
it): a slow, jittery network between a device and the broker, on loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import random


class LaggyProxy:
    def __init__(self, port: int, target_port: int, rng: random.Random,
                 min_delay_s: float, max_delay_s: float) -> None:
        self.port, self.target_port = port, target_port
        self.rng, self.lo, self.hi = rng, min_delay_s, max_delay_s
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def __aenter__(self) -> LaggyProxy:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        for w in self._writers:
            w.close()
            with contextlib.suppress(Exception):
                await w.wait_closed()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_w]
        for src, dst in ((reader, up_w), (up_r, writer)):
            task = asyncio.create_task(self._pipe(src, dst))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pipe(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        # Chunks go through one queue per direction, each released after its own delay
        # but never before the one ahead of it: latency and jitter without reordering
        # bytes inside the stream (which TCP would never do).
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

        async def release() -> None:
            loop = asyncio.get_running_loop()
            while True:
                due, data = await queue.get()
                if not data:
                    break
                await asyncio.sleep(max(0.0, due - loop.time()))
                dst.write(data)
                await dst.drain()
            dst.close()

        releaser = asyncio.create_task(release())
        try:
            loop = asyncio.get_running_loop()
            while data := await src.read(65536):
                await queue.put((loop.time() + self.rng.uniform(self.lo, self.hi), data))
        finally:
            await queue.put((0.0, b""))
            with contextlib.suppress(Exception):
                await releaser
