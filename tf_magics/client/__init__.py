"""Talking to an OpenAI-compatible server: one request in, typed events and a Completion out.

========================  ================================================================
module                    job
========================  ================================================================
``request``               :class:`RequestOptions` (one request, resolved) and its JSON body
``http``                  :class:`Client`: connection pools, attempts, ``/models``
``retry``                 the retry policy (which failures, how long to wait)
``stream_reader``         reading an event stream or a JSON body into a Completion
``sse``                   server-sent event framing, byte-exact
``chunks``                folding chunk deltas into one message (:class:`ChunkAccumulator`)
``think_tags``            inline ``<think>`` reasoning told apart from the answer
``error_bodies``          every shape of error body turned into one exception
``models``                the answer of ``GET /models``
``httpx_cli``             httpx imported without its command-line client (click, rich)
========================  ================================================================

Nothing here imports IPython, ipywidgets or traitlets. Importing the package does not import
httpx either (settings and views only need the plain values); the client itself is
:class:`tf_magics.client.http.Client`.
"""

from __future__ import annotations

from . import httpx_cli
from .chunks import ChunkAccumulator
from .models import ModelInfo
from .request import RequestOptions

__all__ = ["ChunkAccumulator", "ModelInfo", "RequestOptions"]

httpx_cli.defer()
