"""``%chat batch``: the Batch API jobs of this notebook -- list, status, collect, cancel.

Jobs are saved in ``batch_dir`` (``.tf_magics/batches`` beside the notebook) when
``%%chat --map DATA --batch`` submits them, so these commands work after a kernel restart.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError

from tf_magics.render import NO_MATH, escape

from .base import Command, CommandParser, conversation_arg, show

if TYPE_CHECKING:
    from tf_magics.batch import BatchJob
    from tf_magics.events import BatchProgress
    from tf_magics.notebook.session import NotebookSession

__all__ = ["COMMANDS"]


def _parser() -> CommandParser:
    parser = CommandParser(
        "batch",
        "Batch API jobs: list them, see how one is doing, collect its result, or cancel it. "
        "ID is the job's id (job-...) or one of its batch ids.",
    )
    parser.add_argument(
        "action", nargs="?", default="list", choices=["list", "status", "collect", "cancel"]
    )
    parser.add_argument("id", nargs="?", help="The job (not for list).")
    parser.add_argument("-o", "--output", metavar="VAR", help="collect: store the result in VAR.")
    parser.add_argument(
        "--map",
        metavar="DATA",
        help="collect: the DataFrame (or list) the job was submitted for, to get the same "
        "frame as the map (its columns and the results).",
    )
    parser.add_argument(
        "--schema", metavar="NAME", help="collect: the schema class, for instances (not dicts)."
    )
    conversation_arg(parser)
    return parser


def _batch(session: NotebookSession, argv: list[str]) -> Any:
    args = _parser().parse_args(argv)
    chat = session.chat(args.conversation)
    if args.action == "list":
        _show_jobs(chat.batches())
        return None
    if not args.id:
        raise UsageError(f"%chat batch {args.action}: name the job (%chat batch list shows them).")
    if args.action == "status":
        _show_progress(chat.batch_status(args.id))
        return None
    if args.action == "cancel":
        progress = chat.cancel_batch(args.id)
        _show_progress(progress, prefix="Cancel asked: ")
        print(f"Collect what was done with: %chat batch collect {progress.job} -o OUT")
        return None
    return _collect(session, chat, args)


def _collect(session: NotebookSession, chat: Any, args: Any) -> Any:
    from tf_magics.notebook.map_view import MapView, progress_display
    from tf_magics.notebook.mapping import notebook_schema, notebook_value

    data = notebook_value(session.user_ns, args.map, "--map") if args.map else None
    schema = notebook_schema(session.user_ns, args.schema) if args.schema else None
    view = MapView(progress_display())
    try:
        result = chat.collect(args.id, data, schema=schema)
    except Exception as error:
        view.finish(None, error=error)
        raise
    view.finish(chat.last_map)
    if args.output:
        session.user_ns[args.output] = result
        return None
    return result


def _show_progress(progress: BatchProgress, prefix: str = "") -> None:
    from tf_magics.notebook.map_layout import batch_text

    statuses = ", ".join(progress.statuses)
    text = f"{prefix}{batch_text(progress, progress.elapsed)}"
    if len(progress.statuses) > 1:
        text += f" ({statuses})"
    if progress.final:
        text += f". Finished: %chat batch collect {progress.job} -o OUT"
    show(f"<div>{escape(text)}</div>", text)


def _show_jobs(jobs: list[BatchJob]) -> None:
    if not jobs:
        text = "No batch jobs here yet: %%chat --map DATA --batch submits one."
        show(f"<div>{escape(text)}</div>", text)
        return
    header = ("job", "state", "rows", "requests", "model", "submitted", "batches")
    rows = [
        (
            job.id,
            job.state,
            f"{job.rows:,}",
            f"{job.requests:,}",
            job.model or "",
            time.strftime("%Y-%m-%d %H:%M", time.localtime(job.created)),
            ", ".join(job.batch_ids),
        )
        for job in jobs
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    text = "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in (header, *rows)
    )
    cells = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows
    )
    show(f'<table class="tf-magics-batches {NO_MATH}"><tr>{cells}</tr>{body}</table>', text)


COMMANDS = {"batch": Command("Batch API jobs: list, status, collect, cancel", _parser, _batch)}
