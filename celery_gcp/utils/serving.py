"""A uvicorn server that stops at once, for :func:`celery_gcp.testing.serve` and the emulator's
HTTP side (uvicorn's own stop waits for its 0.1 s ticks: about 0.3 s a server)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import socket
from typing import Any

__all__ = ["GRACE", "stoppable_server"]

#: Seconds that requests in flight get to finish when a server stops.
GRACE = 10.0


def stoppable_server(config: Any) -> Any:
    """A uvicorn ``Server`` that :meth:`stop` ends without delay.

    uvicorn's own main loop looks at ``should_exit`` every 0.1 s, and its shutdown sleeps
    0.1 s and then polls every 0.1 s for connections to close: about 0.3 s per stop. Here the
    main loop waits for :meth:`stop` itself, and shutdown closes the idle connections at once
    and waits for the requests in flight (for up to ``GRACE`` seconds), not for a tick.
    """
    import uvicorn

    class Server(uvicorn.Server):
        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self._stopped: concurrent.futures.Future[None] = concurrent.futures.Future()

        def stop(self) -> None:
            """Make the server exit (from any thread)."""
            self.should_exit = True
            if not self._stopped.done():
                self._stopped.set_result(None)

        async def main_loop(self) -> None:
            stopped = asyncio.wrap_future(self._stopped)
            counter = 0
            while not await self.on_tick(counter):
                counter += 10  # every call is the once-a-second tick that sets the Date header
                await asyncio.wait([stopped], timeout=1.0)

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for listener in self.servers:
                listener.close()
            for sock in sockets or []:
                sock.close()
            state, told = self.server_state, set[Any]()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + GRACE
            # Until every connection is gone (one accepted just before the close included):
            # an idle one is closed at once, a busy one once its answer is sent.
            while state.connections and loop.time() < deadline:
                for connection in state.connections - told:
                    connection.shutdown()
                    told.add(connection)
                if state.tasks:
                    await asyncio.wait(set(state.tasks), timeout=deadline - loop.time())
                else:  # a closed connection leaves the set once the loop has turned
                    await asyncio.sleep(0.001)
            for task in state.tasks:
                task.cancel()
            for listener in self.servers:
                await listener.wait_closed()
            await self.lifespan.shutdown()

    return Server(config)
