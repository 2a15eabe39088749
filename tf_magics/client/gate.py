"""A gate every HTTP attempt passes through: how a scheduler bounds what is in flight.

:meth:`Client.chat <tf_magics.client.http.Client.chat>` takes an optional :class:`RequestGate`
and holds :meth:`RequestGate.attempt` around each attempt on the wire: the first one, every retry
and every fallback. The wait before a retry happens *outside* the gate, so a request waiting out
a ``Retry-After`` does not keep a place that another could use. The gate sees how each attempt
ended (the exception passes through its context manager), which is how ``map``'s scheduler learns
about 429s.

Entering the gate gives the attempt a *lane*: a small number that no other attempt in flight
holds. The client sends each lane's attempts through a connection pool of that lane's own, so
many requests in flight never compete for connections in one pool (see ``Client._pool``).
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import Protocol

__all__ = ["RequestGate"]


class RequestGate(Protocol):
    """Admits HTTP attempts (for example at most N at a time, at most R per minute)."""

    def attempt(self) -> AbstractAsyncContextManager[int | None]:
        """Held while one attempt is on the wire; entering it may wait for a place.

        It yields the attempt's lane (``None``: the client's shared pool).

        An attempt that fails raises through it: a
        :class:`~tf_magics.client.retry.RetryableFailure` (which carries the server's
        ``Retry-After``, if any) for a failure that will be retried, or the final error.
        """
