"""What a ``%%chat`` cell does besides a plain turn: a dry run, a comparison, ``--code``.

Each is one function the magic calls once the cell's line is parsed and its values resolved:

- :func:`show_dry_run` builds the request(s) with :meth:`tf_magics.Chat.preview` and shows them;
  nothing is sent and the conversation is not touched (``--new`` and ``-s`` apply to a copy);
- :func:`run_comparison` sends the question to every variant at once into a
  :class:`~tf_magics.notebook.compare_view.CompareView`, keeps the result on the session for
  ``%chat keep N``, and offers buttons to keep one;
- :func:`code_to_next_cell` is the ``--code`` step after a reply: its code blocks go into a new
  cell below (IPython's ``set_next_input``), never run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.display import display

from tf_magics.errors import StreamInterrupted
from tf_magics.events import Notice

from .flags import CellRequest
from .outputs import IPythonOutput, in_kernel

if TYPE_CHECKING:
    from tf_magics.chat import Chat
    from tf_magics.render.code_blocks import CodeBlock
    from tf_magics.reply import Reply

    from .session import NotebookSession

__all__ = ["check_comparison", "code_to_next_cell", "run_comparison", "show_dry_run"]


def check_comparison(request: CellRequest) -> list[dict[str, Any]]:
    """The variants a cell asks to compare (empty: none), checked against the other flags.

    Raises
    ------
    UsageError
        For too many variants, or ``--code`` with a comparison.
    """
    from tf_magics.engine.compare import MAX_VARIANTS  # the engine loads with the first turn

    variants = request.comparison()
    if not variants:
        return []
    if len(variants) < 2:
        raise UsageError("--compare: give at least two models (--compare A,B).")
    if len(variants) > MAX_VARIANTS:
        raise UsageError(
            f"A comparison has at most {MAX_VARIANTS} variants; this cell asks for "
            f"{len(variants)} (every combination of the lists given)."
        )
    if request.code is not None:
        raise UsageError(
            "--code cannot go with a comparison: keep one reply first (%chat keep N), then "
            "ask for the code with --code."
        )
    return variants


def show_dry_run(
    chat: Chat,
    text: str,
    request: CellRequest,
    variants: list[dict[str, Any]],
    *,
    tools: list[Callable[..., Any]] | None,
    context: Any,
) -> Any:
    """Show the request(s) the cell would send; nothing is sent or changed. Returns them."""
    from tf_magics.engine.compare import variant_label

    from .preview_view import preview_bundle

    preview_chat = chat.fork(chat.conversation.name)  # --new and -s apply to a copy only
    preview_chat.code_cells = chat.code_cells
    if request.new:
        preview_chat.reset()
    if request.system is not None:
        preview_chat.system = request.system
    previews = []
    for variant in variants or [{}]:
        preview = preview_chat.preview(
            text,
            history=not request.no_history,
            tools=tools,
            tool_choice=request.tool_choice,
            context=context,
            **{**request.overrides, **variant},
        )
        if variants:
            preview.label = variant_label(variant, list(variant))
        previews.append(preview)
    display(preview_bundle(previews), raw=True)
    return previews if variants else previews[0]


def run_comparison(
    session: NotebookSession,
    chat: Chat,
    text: str,
    request: CellRequest,
    variants: list[dict[str, Any]],
    *,
    tools: list[Callable[..., Any]] | None,
    context: Any,
) -> Any:
    """Ask every variant at once, show the replies side by side, and offer to keep one."""
    from tf_magics.engine.compare import variant_label

    from .compare_layout import KEEP_HINT
    from .compare_view import CompareView, KeepButtons
    from .terminal_view import TerminalView

    labels = [variant_label(variant, list(variant)) for variant in variants]
    options = chat.settings.resolve(**request.overrides)
    view = CompareView(
        IPythonOutput(),
        labels,
        max_tokens=options.max_tokens,
        remote_images=chat.settings.remote_images,
    )
    hint = KEEP_HINT if not request.no_history else "A one-off comparison: nothing to keep."
    try:
        comparison = chat.compare(
            text,
            variants,
            observer=view if in_kernel() else TerminalView(),
            history=not request.no_history,
            tools=tools,
            tool_choice=request.tool_choice,
            context=context,
            **request.overrides,
        )
    except StreamInterrupted:
        if chat.last_comparison is not None:
            session.last_comparison = chat.last_comparison
            view.finish(chat.last_comparison, hint=hint)
        raise
    session.last_comparison = comparison
    view.finish(comparison, hint=hint)
    if in_kernel() and not request.no_history:
        display(KeepButtons(session, comparison, request.conversation))
    return comparison


def _chosen(blocks: list[CodeBlock], which: str) -> tuple[list[CodeBlock], str | None]:
    """The blocks ``--code`` puts below, and a warning when it cannot."""
    if which != "all":
        if not which.isdigit() or not 1 <= int(which) <= len(blocks):
            count = len(blocks)
            return [], f"--code {which}: the reply has {count} code block{'s' * (count != 1)}."
        return [blocks[int(which) - 1]], None
    python = [block for block in blocks if block.is_python]
    return (python or blocks), None


def code_to_next_cell(shell: Any, which: str) -> Callable[[Reply], list[Notice]]:
    """The ``--code`` step: put the reply's code blocks into a new cell below, unrun."""

    def after(reply: Reply) -> list[Notice]:
        from tf_magics.render.code_blocks import code_blocks

        blocks = code_blocks(reply.text)
        if not blocks:
            return [Notice("--code: the reply has no code block, so no cell was added.", "warning")]
        chosen, problem = _chosen(blocks, which)
        if problem is not None:
            return [Notice(f"{problem} No cell was added.", "warning")]
        joined = "\n\n".join(
            (f"# --- code block {blocks.index(block) + 1} of {len(blocks)} ---\n" if i else "")
            + block.code
            for i, block in enumerate(chosen)
        )
        shell.set_next_input(joined, replace=False)
        left = len(blocks) - len(chosen)
        what = "code block" if len(chosen) == 1 else f"{len(chosen)} code blocks"
        note = f"⤵ The reply's {what} went into a new cell below (not run)."
        if left and which == "all":
            note += f" Left out {left} block{'s' * (left != 1)} in another language (--code N)."
        return [Notice(note)]

    return after
