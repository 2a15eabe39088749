"""Data work at notebook scale: one prompt template over the rows of a DataFrame or a list.

``tf_magics.map(template, data)``, :meth:`Chat.map <tf_magics.Chat.map>` and ``%%chat --map DF``
send one independent request per row, many at once, and give the replies back in input order as
columns (or objects, with a schema).

========================  ================================================================
module                    job
========================  ================================================================
``template``              ``{column}`` placeholders filled from a row, checked first
``rows``                  DataFrame / list of dicts / list of strings → one prompt per row
``plan``                  a map from start to end: checked, run, assembled
``scheduler``             :class:`MapRun`: the workers, one turn per prompt, progress events
``limiter``               requests in flight: the window, 429s, requests per minute
``results``               the result: a DataFrame like the input, or a list in input order
``summary``               :class:`RowError` and :class:`MapSummary`
``methods``               ``Chat.map`` / ``Chat.amap`` (a mixin of :class:`~tf_magics.Chat`)
========================  ================================================================

This package sits between the chat and the engine: each row is one
:class:`~tf_magics.engine.TurnLoop` (so structured replies, retries and errors behave as in a
cell), every request goes through the one client, and pandas is imported only by the user.
"""

from __future__ import annotations

from .batch_methods import BatchMethods
from .methods import MapMethods
from .plan import MapPlan, plan_map, run_plan
from .summary import INTERRUPTED, MapSummary, RowError

__all__ = [
    "INTERRUPTED",
    "BatchMethods",
    "MapMethods",
    "MapPlan",
    "MapSummary",
    "RowError",
    "plan_map",
    "run_plan",
]
