"""The public API is pinned: what each package exports, and where exported names say they live.

Changing a list below is a decision about the public surface (add to CHANGELOG.md), not a
formality: users import these names.
"""

from __future__ import annotations

import importlib
import inspect
import warnings

import pytest

import tf_magics

PUBLIC = {
    "tf_magics": [
        "APIConnectionError",
        "APIError",
        "APIStatusError",
        "APITimeoutError",
        "Attachment",
        "AttachmentError",
        "AuthenticationError",
        "BadRequestError",
        "BatchError",
        "BatchProgress",
        "BatchUnsupportedError",
        "BudgetExceededError",
        "CacheMissError",
        "Chat",
        "ChatSettings",
        "Comparison",
        "Completion",
        "CompletionDone",
        "ConfigurationError",
        "ContentDelta",
        "ContextAttached",
        "ContextLengthError",
        "Conversation",
        "EmptyStreamError",
        "Event",
        "ImagesNotSupportedError",
        "IncompleteStreamError",
        "MapBudgetExceeded",
        "MapError",
        "MapInterrupted",
        "MapProgress",
        "MapSummary",
        "Message",
        "Notice",
        "Preview",
        "RateLimitError",
        "ReasoningDelta",
        "Replayed",
        "Reply",
        "RequestStarted",
        "Retrying",
        "RowError",
        "ServerError",
        "Source",
        "StreamError",
        "StreamFallback",
        "StreamInterrupted",
        "StructuredOutputError",
        "TFMagicsError",
        "TFMagicsWarning",
        "Tool",
        "ToolArgumentError",
        "ToolCall",
        "ToolCallDelta",
        "ToolCallFinished",
        "ToolCallStarted",
        "ToolDefinitionError",
        "ToolRegistry",
        "ToolReplacedWarning",
        "ToolResult",
        "ToolSchemaWarning",
        "TurnInProgressError",
        "Usage",
        "ValidationError",
        "VariantEvent",
        "__version__",
        "default_registry",
        "get_chat",
        "load_ipython_extension",
        "map",
        "panel",
        "tool",
        "unload_ipython_extension",
    ],
    "tf_magics.errors": [
        "APIConnectionError",
        "APIError",
        "APIStatusError",
        "APITimeoutError",
        "AttachmentError",
        "AuthenticationError",
        "BadRequestError",
        "BatchError",
        "BatchUnsupportedError",
        "BudgetExceededError",
        "CacheMissError",
        "ConfigurationError",
        "ContextLengthError",
        "EmptyStreamError",
        "ImagesNotSupportedError",
        "IncompleteStreamError",
        "MapBudgetExceeded",
        "MapError",
        "MapInterrupted",
        "RateLimitError",
        "ServerError",
        "StreamError",
        "StreamInterrupted",
        "StructuredOutputError",
        "TFMagicsError",
        "TFMagicsWarning",
        "ToolArgumentError",
        "ToolDefinitionError",
        "ToolReplacedWarning",
        "ToolSchemaWarning",
        "TurnInProgressError",
        "ValidationError",
    ],
    "tf_magics.events": [
        "BatchProgress",
        "CompletionDone",
        "ContentDelta",
        "ContextAttached",
        "Event",
        "MapProgress",
        "Notice",
        "ReasoningDelta",
        "RequestStarted",
        "Retrying",
        "StreamFallback",
        "ToolCallDelta",
        "ToolCallFinished",
        "ToolCallStarted",
        "VariantEvent",
    ],
    "tf_magics.types": [
        "Completion",
        "Ending",
        "FinishKind",
        "Message",
        "Replayed",
        "Role",
        "ToolCall",
        "ToolResult",
        "ToolStatus",
        "Usage",
        "normalize_finish_reason",
    ],
    "tf_magics.client": ["ChunkAccumulator", "ModelInfo", "RequestOptions"],
    "tf_magics.cache": [
        "CACHE_FILE_ENV",
        "MODE_ENV",
        "CacheMode",
        "Entry",
        "Location",
        "RecordReplay",
        "RecordingFile",
        "RecordingSummary",
        "cache_mode",
        "canonical_request",
        "layer_for",
        "locate",
        "notebook_path",
        "recording_file",
        "register_notebook_path",
        "request_key",
        "unregister_notebook_path",
    ],
    "tf_magics.tools": ["Tool", "ToolRegistry", "default_registry", "tool"],
    "tf_magics.schema": [
        "ResponseSchema",
        "convert_fields",
        "convert_value",
        "type_schema",
        "validate_json",
    ],
    "tf_magics.data": [
        "INTERRUPTED",
        "BatchMethods",
        "MapMethods",
        "MapPlan",
        "MapSummary",
        "RowError",
        "plan_map",
        "run_plan",
    ],
    "tf_magics.attachment": ["Attachment", "label_line"],
    "tf_magics.context": [
        "SUMMARISERS",
        "Budget",
        "CodeCells",
        "Source",
        "Summariser",
        "Summary",
        "attach",
        "context_items",
        "summarise",
    ],
    "tf_magics.preview": ["Preview", "shorten_data_uris"],
    "tf_magics.render": [
        "NO_MATH",
        "StreamingMarkdown",
        "escape",
        "markdown_images_as_links",
        "render_markdown",
        "sanitize_html",
    ],
    "tf_magics.batch": [
        "DEFAULT_DIRECTORY",
        "BatchJob",
        "BatchLimits",
        "JobStore",
        "Outcome",
        "check_job",
        "collect_job",
        "custom_id",
        "follow_job",
        "new_job_id",
        "position_of",
        "progress_of",
        "read_results",
        "request_files",
        "submit_job",
        "unfinished_error",
    ],
    "tf_magics.engine": [
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
    ],
    "tf_magics.local": [
        "INSTALL_HINT",
        "LOCAL_MODEL_DESCRIPTION",
        "LOCAL_MODEL_ENV",
        "LocalServer",
        "find_local_model",
        "free_loopback_port",
        "get_local_server",
        "local_extra_installed",
        "local_server_running",
        "missing_local_packages",
        "no_endpoint_error",
        "no_endpoint_message",
        "stop_local_server",
    ],
    "tf_magics.notebook": ["get_chat", "load_ipython_extension", "unload_ipython_extension"],
    "tf_magics.notebook.panel": ["ChatPanel", "panel", "show_panel"],
    "tf_magics.notebook.commands": ["COMMANDS", "run_line_command"],
    "tf_magics.notebook.values": ["ERROR_NAME", "cell_lookup", "last_error", "notebook_values"],
}


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_each_package_exports_exactly_its_pinned_names(module: str) -> None:
    exported = importlib.import_module(module).__all__
    assert sorted(exported) == sorted(PUBLIC[module])


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_every_exported_name_exists(module: str) -> None:
    package = importlib.import_module(module)
    assert [name for name in package.__all__ if not hasattr(package, name)] == []


@pytest.mark.parametrize("name", [n for n in PUBLIC["tf_magics"] if not n.startswith("_")])
def test_names_exported_from_tf_magics_say_they_live_there(name: str) -> None:
    value = getattr(tf_magics, name)
    if inspect.isclass(value) or inspect.isfunction(value):
        assert value.__module__ == "tf_magics"


def test_every_exception_and_warning_is_defined_in_errors() -> None:
    import tf_magics.errors as errors

    public = {
        name
        for name in dir(tf_magics)
        if inspect.isclass(getattr(tf_magics, name))
        and issubclass(getattr(tf_magics, name), (Exception, Warning))
    }
    assert public == {
        name for name in errors.__all__ if issubclass(getattr(errors, name), (Exception, Warning))
    }


def test_reply_finish_is_a_deprecated_alias_of_finish_kind() -> None:
    from tf_magics import Completion, Reply

    reply = Reply(completions=[Completion(finish_reason="eos_token", ended="done")])
    with pytest.warns(DeprecationWarning, match="finish_kind"):
        assert reply.finish == "stop"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert reply.finish_kind == "stop"
