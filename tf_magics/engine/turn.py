"""One turn: send, stream, run the tools the model asked for, re-send, until an answer.

The loop is bounded (``max_tool_rounds``) and leaves the conversation valid whatever happens: an
error, an interrupt or the round limit still gives every tool call a result, a partial reply is
kept (marked) and a turn that produced nothing at all is rolled back, so running the cell again
does not send the question twice.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tf_magics._secrets import SecretScanner
from tf_magics._text import exception_text
from tf_magics.attachment import Attachment
from tf_magics.client import ChunkAccumulator, RequestOptions
from tf_magics.conversation import Conversation
from tf_magics.cost import cost_of
from tf_magics.errors import (
    APIError,
    APIStatusError,
    EmptyStreamError,
    StreamInterrupted,
    StructuredOutputError,
)
from tf_magics.events import (
    CompletionDone,
    ContentDelta,
    ContextAttached,
    Event,
    Notice,
    ReasoningDelta,
    RequestStarted,
    StreamFallback,
    ToolCallDelta,
    ToolCallFinished,
    ToolCallStarted,
)
from tf_magics.reply import Reply, StopReason
from tf_magics.types import Completion, ToolResult

from .endpoint import LOCAL_SOURCE, default_model, local_endpoint, model_price
from .outgoing import (
    Redactions,
    image_failure,
    messages_to_send,
    redact_question,
    refuse_images_locally,
    trim_before_question,
)
from .private_loop import Bridge
from .structured import StructuredCheck

if TYPE_CHECKING:
    from tf_magics.client.gate import RequestGate
    from tf_magics.client.http import Client
    from tf_magics.schema import ResponseSchema
    from tf_magics.tools.execute import Confirm
    from tf_magics.tools.registry import Tool, ToolRegistry

__all__ = ["TurnLoop", "interrupted_error"]

_FIRST_OUTPUT = (ContentDelta, ReasoningDelta, ToolCallDelta)


class TurnLoop:
    """Runs one turn of a conversation and keeps its state for the caller.

    The state (:attr:`reply`, the current accumulator) stays readable after a failure or a
    cancellation, which is how an interrupted stream's partial reply reaches the user.
    """

    def __init__(
        self,
        *,
        client: Client,
        conversation: Conversation,
        options: RequestOptions,
        bridge: Bridge,
        registry: ToolRegistry | None = None,
        tool_choice: Any = None,
        confirm: Confirm | None = None,
        max_result_chars: int = 20_000,
        tool_timeout: float | None = None,
        history_limit: tuple[int | None, int | None] = (None, None),
        clock: Callable[[], float] = time.perf_counter,
        schema: ResponseSchema | None = None,
        gate: RequestGate | None = None,
        attachments: list[Attachment] | None = None,
        parts: list[dict[str, Any]] | None = None,
        scanner: SecretScanner | None = None,
    ) -> None:
        self.client = client
        self.conversation = conversation
        self.options = options
        self.bridge = bridge
        self.registry = registry
        self.tool_choice = tool_choice
        self.confirm = confirm
        self.max_result_chars = max_result_chars
        self.tool_timeout = tool_timeout
        self.history_limit = history_limit
        self.clock = clock
        self.schema = schema
        self.gate = gate
        self.attachments = list(attachments or [])
        #: Parts sent before the question besides the attachments' (a retry resends its own).
        self.parts = list(parts or [])
        self.scanner = scanner if scanner is not None else SecretScanner()
        self.redactions = Redactions()
        named = schema.name if schema else None
        self.reply = Reply(conversation=conversation.name, schema_name=named)
        self._accumulator: ChunkAccumulator | None = None
        self._start = 0.0

    # -- events --

    def _emit(self, event: Event) -> None:
        if self.reply.time_to_first_token is None and isinstance(event, _FIRST_OUTPUT):
            self.reply.time_to_first_token = self.clock() - self._start
        self.bridge.emit(event)

    def note(self, text: str, kind: str = "info") -> None:
        """Record a note on the reply and show it."""
        self.reply.notes.append(text)
        self.bridge.emit(Notice(text, "warning" if kind == "warning" else "info"))

    # -- the loop --

    async def run(self, user_text: str) -> Reply:
        """Add ``user_text`` to the conversation and run the turn to its end.

        Whatever ends the turn early (an API error, an interrupt, or anything unexpected), the
        conversation is left sendable: the partial reply is kept and marked, every tool call is
        answered, and a question that got nothing back is removed.
        """
        self._start = self.clock()
        await self._prepare()
        text, attachments = redact_question(
            user_text, self.attachments, self.scanner, self.redactions
        )
        parts = [*self.parts, *(part for a in attachments for part in a.parts)]
        if attachments:
            self.reply.attachments = attachments
            self.bridge.emit(ContextAttached(tuple(attachments)))
        self.conversation.add_user(text, parts)
        try:
            refuse_images_locally(
                self.options.base_url_source, self.options.model, self.conversation
            )
            await self._answer()
        except StructuredOutputError:
            raise  # a complete answer that does not fit: kept as it is (see structured.py)
        except asyncio.CancelledError:
            self._keep_partial("interrupted", "Interrupted by the user.")
            raise
        except APIError as error:
            self._keep_partial("error", str(error), error.partial)
            error.reply = self.reply
            raise
        except Exception as error:
            self._keep_partial("error", exception_text(error))
            raise
        finally:
            self.reply.elapsed = self.clock() - self._start
            self.reply.conversation_cost = self.conversation.cost
        return self.reply

    async def _prepare(self) -> None:
        """Fill in what the request still lacks, and say what the user should know first.

        With a record/replay layer on the request, the endpoint (the local model server, the
        server's default model) is filled in only when a request really goes to the network.
        """
        self.reply.currency = self.options.caps.currency
        self.reply.priced = bool(self.options.prices) or self.options.caps.money is not None
        if self.options.hook is None:
            self.options = await self._resolve(self.options)
        else:
            self.options = replace(self.options, deferred=(*self.options.deferred, self._resolve))
        report = trim_before_question(self.conversation, self.history_limit)
        if report is not None:
            self.note(str(report))

    async def _resolve(self, options: RequestOptions) -> RequestOptions:
        """``options`` with the endpoint filled in; the turn's later requests reuse it."""
        options = await local_endpoint(self.bridge, options)
        options = await default_model(self.client, options, self.note)
        self.reply.requested_model = options.model
        self.reply.key_source = options.key_source
        self.reply.price = await model_price(self.client, options)
        if options.base_url_source == LOCAL_SOURCE:
            from tf_magics.local import LOCAL_MODEL_DESCRIPTION

            self.reply.model_note = LOCAL_MODEL_DESCRIPTION
        if options.withheld_key and options.api_key is None:
            self.note(options.withheld_key, "warning")
        # Later rounds of this turn go to the same place without asking again.
        self.options = replace(
            options,
            stream=self.options.stream,
            deferred=(),
        )
        return options

    async def _answer(self) -> None:
        """Run the rounds; with a schema, check the answer and ask again when it does not fit."""
        await self._rounds()
        if self.schema is None:
            return
        check = StructuredCheck(self.schema, self.options.schema_retries)
        while (correction := check.correction(self.reply, self.conversation)) is not None:
            self.note(check.note)
            check.asked(self.conversation.add_user(correction))
            await self._rounds(first=len(self.reply.completions) + 1)

    async def _rounds(self, first: int = 1) -> None:
        tools = self.registry.schemas() if self.registry is not None else []
        last = first + self.options.max_tool_rounds - 1
        for round_number in range(first, last + 1):
            stream = self.options.stream
            # Read each round: a deferred endpoint is known after the first request sent.
            base_url = self.options.base_url or ""
            if tools and stream and base_url in self.client.cannot_stream_tools:
                stream = False
            completion = await self._request(round_number, tools, stream)
            if self.reply.time_to_first_token is None:
                # Not streamed: the first words arrive with the whole reply.
                self.reply.time_to_first_token = self.clock() - self._start
            self.bridge.emit(CompletionDone(completion))
            self.reply.completions.append(completion)
            # A replayed reply cost nothing this time.
            cost = 0.0 if completion.replayed else cost_of(completion.usage, self.reply.price)
            self.conversation.add_assistant(completion, cost=cost)
            self.reply.text = completion.content
            if not completion.tool_calls:
                return
            if round_number == last:
                limit = self.options.max_tool_rounds
                self._skip_pending(f"Not run: the limit of {limit} model requests was reached.")
                self.reply.stopped = "round_limit"
                self.note(
                    f"Stopped after {limit} requests (the tool-round limit); the model still "
                    "wanted to call tools. Raise it with ChatSettings.max_tool_rounds or "
                    "`--max-rounds`.",
                    "warning",
                )
                return
            await self._run_tools(completion)

    async def _request(
        self, round_number: int, tools: list[dict[str, Any]], stream: bool
    ) -> Completion:
        options = (
            replace(self.options, stream=stream) if stream != self.options.stream else self.options
        )
        # A forced tool_choice applies to the first request only, or the model would be forced to
        # call the tool again and again until the round limit.
        tool_choice = self.tool_choice if round_number == 1 else None
        self.bridge.emit(RequestStarted(round_number, options.model, options.stream))
        self._accumulator = ChunkAccumulator()
        messages = messages_to_send(self.conversation, self.scanner, self.redactions, self.note)
        try:
            return await self.client.chat(
                options,
                messages,
                self._accumulator,
                on_event=self._emit,
                tools=tools or None,
                tool_choice=tool_choice if tools else None,
                response_format=self.schema,
                gate=self.gate,
            )
        except (EmptyStreamError, APIStatusError) as error:
            empty = isinstance(error, EmptyStreamError) and not self._accumulator.has_output
            if not (empty and tools and options.stream):
                refused = (
                    None
                    if self._accumulator.has_output
                    else image_failure(error, messages, options.model, self.conversation)
                )
                if refused is None:
                    raise
                raise refused from None
        # llama-cpp-python answers a streamed request with tools (tool_choice auto) with an empty
        # body: ask again without streaming, and remember not to stream tool rounds there.
        # The address the request went to: filled in while it was sent when it was deferred.
        self.client.cannot_stream_tools.add(self.options.base_url or options.base_url or "")
        self.bridge.emit(StreamFallback("the server sent an empty stream for a request with tools"))
        self.reply.notes.append(
            "tool rounds sent without streaming (the server cannot stream them)"
        )
        return await self._request(round_number, tools, stream=False)

    async def _run_tools(self, completion: Completion) -> None:
        from tf_magics.tools import ToolRegistry
        from tf_magics.tools.execute import run_tool_call

        # A model may call tools it was not offered (none enabled, or a server that ignores
        # ``tools``): such a call is answered with an error result like an unknown tool.
        registry = self.registry if self.registry is not None else ToolRegistry()
        for call in completion.tool_calls:
            arguments: dict[str, Any] | None
            try:
                arguments = call.parsed_arguments()
            except ValueError:
                arguments = None
            self.bridge.emit(ToolCallStarted(call, arguments))
            # One call at a time, each recorded as soon as it ran: if the turn is interrupted,
            # the history says exactly which calls ran and which did not.
            result = await run_tool_call(
                registry,
                call,
                call_sync=self.bridge.call_sync,
                confirm=self._ask_user if self.confirm is not None else None,
                max_result_chars=self.max_result_chars,
                timeout=self.tool_timeout,
            )
            self._record(result)

    async def _ask_user(self, tool: Tool, arguments: dict[str, Any]) -> bool | None:
        """Ask the confirm callback on the caller's thread, where ``input()`` reaches a person."""
        confirm = self.confirm
        assert confirm is not None
        answer = await self.bridge.call_sync(lambda: confirm(tool, arguments))
        if inspect.isawaitable(answer):
            answer = await answer
        return None if answer is None else bool(answer)

    def _record(self, result: ToolResult) -> None:
        self.conversation.add_tool_result(result)
        self.reply.tool_results.append(result)
        self.bridge.emit(ToolCallFinished(result))

    def _skip_pending(self, content: str) -> None:
        for call in self.conversation.pending_tool_calls():
            self._record(ToolResult(call=call, content=content, status="skipped"))

    # -- failures --

    def _keep_partial(
        self, why: StopReason, message: str, partial: Completion | None = None
    ) -> None:
        """Keep what arrived; roll back a turn that produced nothing at all."""
        self.reply.stopped = why
        self.reply.error = message
        if partial is None and self._accumulator is not None:
            partial = self._accumulator.completion(
                ended="interrupted" if why == "interrupted" else "error"
            )
        if partial is not None and (partial.content or partial.reasoning):
            self.reply.completions.append(partial)
            self.reply.text = partial.content
            if partial.content:
                note = (
                    "interrupted by the user" if why == "interrupted" else f"incomplete: {message}"
                )
                cost = cost_of(partial.usage, self.reply.price)
                self.conversation.add_assistant(partial, note=note, cost=cost)
        self._skip_pending(f"Not run: the turn stopped ({why}).")
        messages = self.conversation.messages
        if messages and messages[-1].role == "user":
            # Nothing was added after the question: forget it too, so that running the cell
            # again does not send it twice.
            self.conversation.undo()


def interrupted_error(turn: TurnLoop) -> StreamInterrupted:
    """The error raised to a synchronous caller after Ctrl-C, carrying what was kept."""
    reply = turn.reply
    partial = reply.completions[-1] if reply.completions else None
    not_run = sum(result.status == "skipped" for result in reply.tool_results)
    if reply.text:
        kept = "the partial reply is kept in the history (marked interrupted)"
    elif reply.tool_results:
        calls = len(reply.tool_results)
        kept = (
            f"the question and {calls} tool call{'s' if calls > 1 else ''} are kept in the history"
        )
        if not_run:
            kept += f" ({not_run} answered 'not run': the turn stopped before it ran)"
    else:
        kept = "nothing had arrived, so the question was not added to the history"
    error = StreamInterrupted(f"Interrupted: {kept}.", partial=partial)
    error.reply = reply
    return error
