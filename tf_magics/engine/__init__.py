"""Running a turn: the request/tool loop, the private event loop, and who watches.

========================  ================================================================
module                    job
========================  ================================================================
``turn``                  :class:`TurnLoop`: request, stream, run tools, re-request, stop
``observer``              :class:`TurnObserver`: the one protocol a view implements
``private_loop``          the event loop on its own thread that sync callers wait on
``endpoint``              filling in the local model and the server's default model
``start``                 starting a chat's turn: endpoint, loop from the settings, run
``outgoing``              what leaves: secrets masked in every message, images checked
``preview``               a dry run: the request a turn would send, built on a copy
``compare``               one question to several variants at once: :class:`Comparison`
========================  ================================================================
"""

from __future__ import annotations

from .endpoint import LOCAL_SOURCE, default_model, local_endpoint, model_price
from .observer import EventCallback, TurnObserver, observer_for
from .private_loop import Bridge, DirectBridge, run_blocking
from .start import start_turn
from .turn import TurnLoop, interrupted_error

__all__ = [
    "LOCAL_SOURCE",
    "Bridge",
    "DirectBridge",
    "EventCallback",
    "TurnLoop",
    "TurnObserver",
    "default_model",
    "interrupted_error",
    "local_endpoint",
    "model_price",
    "observer_for",
    "run_blocking",
    "start_turn",
]
