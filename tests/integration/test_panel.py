"""The control panel, without a frontend: widgets driven from Python against the loopback server.

Setting a widget's ``value`` (or calling ``button.click()``) is exactly what the frontend's
messages do in the kernel, so these tests check that each control reaches the next request and
that changes made elsewhere (``%config``, ``%chat set``, Python, cell flags) show in the panel.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import tf_magics
from tf_magics.conversation import Conversation
from tf_magics.notebook.panel import ChatPanel
from tf_magics.notebook.panel.html import compact_history_html, sampling_hint, usage_chart_svg
from tf_magics.notebook.session import NotebookSession, session_for
from tf_magics.types import Usage
from tf_testing.fake_openai import FakeOpenAI, TextReply

SECRET = "sk-test-DO-NOT-LEAK-7f3a9c"


@pytest.fixture
def session(ip: Any) -> NotebookSession:
    found = session_for(ip)
    assert found is not None
    return found


@pytest.fixture
def make_panel(session: NotebookSession) -> Iterator[Callable[..., ChatPanel]]:
    made: list[ChatPanel] = []

    def make(conversation: str | None = None, **kwargs: Any) -> ChatPanel:
        made.append(ChatPanel(session, conversation, **kwargs))
        return made[-1]

    yield make
    for panel in made:
        panel.close()


def checked(checkbox: Any) -> bool:
    """A checkbox's state (a function, so mypy does not narrow widget values across changes)."""
    return bool(checkbox.value)


def checked_readout(slider: Any) -> bool:
    return bool(slider.readout)


def chat(ip: Any, text: str = "Hello?", flags: str = "") -> None:
    ip.run_cell_magic("chat", flags, text)


def last_request(server: FakeOpenAI) -> dict[str, Any]:
    request: dict[str, Any] = server.chat_requests[-1]
    return request


# -- showing the panel -----------------------------------------------------------------------------


def test_chat_panel_command_displays_a_panel_bound_to_the_conversation(
    ip: Any, session: NotebookSession
) -> None:
    ip.run_line_magic("chat", "panel")
    ip.run_line_magic("chat_panel", "-c draft")
    try:
        assert all(isinstance(p, ChatPanel) for p in session.panels)
        assert [p.name for p in session.panels if isinstance(p, ChatPanel)] == ["default", "draft"]
        assert "draft" in session.chats
    finally:
        for panel in list(session.panels):
            panel.close()
    assert session.panels == []


def test_python_panel_function_works_even_after_the_module_was_imported(
    ip: Any, session: NotebookSession
) -> None:
    import tf_magics.notebook.panel  # what `%chat panel` does first

    first = tf_magics.panel()
    second = tf_magics.panel("other")
    try:
        assert isinstance(first, ChatPanel)
        assert second.name == "other"
        assert first in session.panels
    finally:
        first.close()
        second.close()


def test_python_panel_function_loads_the_extension_when_needed(ip: Any) -> None:
    ip.run_line_magic("unload_ext", "tf_magics")
    panel = tf_magics.panel()
    try:
        assert session_for(ip) is panel.session
    finally:
        panel.close()


def test_panel_has_a_text_and_html_fallback_next_to_the_widget(make_panel: Any) -> None:
    panel = make_panel()
    panel.settings.temperature = 0.2
    panel.chat.system = "You are terse."
    bundle = panel._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "temperature" in bundle["text/plain"]
    assert "0.2" in bundle["text/plain"]
    assert "You are terse." in bundle["text/plain"]
    assert "(server default)" in bundle["text/plain"]  # top_p
    assert "<table>" in bundle["text/html"]


# -- every control reaches the next request --------------------------------------------------------


def test_temperature_slider_reaches_the_request_and_server_default_sends_nothing(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    assert checked(panel.fields["temperature"].default)
    chat(ip)
    assert "temperature" not in last_request(fake_server)

    panel.fields["temperature"].slider.value = 0.35  # moving the slider sets the value
    assert not checked(panel.fields["temperature"].default)
    chat(ip)
    assert last_request(fake_server)["temperature"] == 0.35

    panel.fields["temperature"].default.value = True  # back to the server default
    assert panel.settings.temperature is None
    chat(ip)
    assert "temperature" not in last_request(fake_server)


def test_top_p_slider_reaches_the_request(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    panel.fields["top_p"].slider.value = 0.9
    chat(ip)
    assert last_request(fake_server)["top_p"] == 0.9
    panel.fields["top_p"].default.value = True
    chat(ip)
    assert "top_p" not in last_request(fake_server)


def test_unticking_server_default_sends_the_slider_position(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    panel.fields["temperature"].default.value = False
    chat(ip)
    assert last_request(fake_server)["temperature"] == panel.fields["temperature"].resting


def test_model_max_tokens_seed_stop_and_stream_reach_the_request(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    panel.model.value = "my-model"
    panel.fields["max_tokens"].widget.value = 321
    panel.fields["seed"].widget.value = "42"
    panel.fields["stop"].widget.value = ["###", "END"]
    panel.fields["stream"].widget.value = False
    chat(ip)
    request = last_request(fake_server)
    assert request["model"] == "my-model"
    assert request["max_tokens"] == 321
    assert request["seed"] == 42
    assert request["stop"] == ["###", "END"]
    assert request["stream"] is False

    panel.model.value = ""
    panel.fields["seed"].widget.value = ""
    panel.fields["stop"].widget.value = []
    panel.fields["stream"].widget.value = True
    chat(ip)
    request = last_request(fake_server)
    assert request["model"] == "fake-model"  # the server's first model again
    assert "seed" not in request
    assert "stop" not in request
    assert request["stream"] is True


def test_bad_values_are_refused_with_a_message_and_the_control_is_reset(
    make_panel: Any,
) -> None:
    panel = make_panel()
    panel.fields["seed"].widget.value = "forty-two"
    assert panel.settings.seed is None
    assert panel.fields["seed"].widget.value == ""
    assert "whole number" in panel.status.value
    panel.fields["stop"].widget.value = ["a", "b", "c", "d", "e"]
    assert panel.settings.stop is None
    assert list(panel.fields["stop"].widget.value) == []
    assert "At most 4" in panel.status.value


def test_system_prompt_goes_to_index_0_of_the_conversation(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    chat(ip, "First question")
    panel.system.value = "You are a patient statistics tutor."
    chat(ip, "Second question")
    messages = last_request(fake_server)["messages"]
    assert messages[0] == {"role": "system", "content": "You are a patient statistics tutor."}
    assert [m["role"] for m in messages[1:]] == ["user", "assistant", "user"]
    panel.system.value = ""
    chat(ip, "Third")
    assert last_request(fake_server)["messages"][0]["role"] == "user"


def test_tool_switches_reach_the_requests_tools_list(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    @tf_magics.tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    @tf_magics.tool
    def lookup(term: str) -> str:
        """Look a term up."""
        return term

    panel = make_panel()
    assert set(panel.tool_switches) == {"get_weather", "lookup"}
    chat(ip)
    names = [t["function"]["name"] for t in last_request(fake_server)["tools"]]
    assert names == ["get_weather", "lookup"]

    panel.tool_switches["get_weather"].value = False
    chat(ip)
    names = [t["function"]["name"] for t in last_request(fake_server)["tools"]]
    assert names == ["lookup"]

    panel.tool_switches["lookup"].value = False
    chat(ip)
    assert "tools" not in last_request(fake_server)


def test_tools_registered_in_a_later_cell_appear_after_that_cell(ip: Any, make_panel: Any) -> None:
    panel = make_panel()
    assert panel.tool_switches == {}
    ip.run_cell(
        "import tf_magics\n"
        "@tf_magics.tool(confirm=True)\n"
        "def delete_file(path: str) -> str:\n"
        "    '''Delete a file.'''\n"
        "    return path\n"
    )
    assert list(panel.tool_switches) == ["delete_file"]
    assert panel.tool_switches["delete_file"].description == "delete_file (asks first)"


# -- changes made elsewhere show in the panel ------------------------------------------------------


def test_config_set_unset_and_python_changes_show_in_the_panel(ip: Any, make_panel: Any) -> None:
    panel = make_panel()
    ip.run_line_magic("config", "ChatSettings.temperature = 0.25")
    assert panel.fields["temperature"].slider.value == 0.25
    assert not checked(panel.fields["temperature"].default)
    assert checked_readout(panel.fields["temperature"].slider)

    ip.run_line_magic("chat", "set top_p=0.8 max_tokens=77 model=big-model seed=7")
    assert panel.fields["top_p"].slider.value == 0.8
    assert panel.fields["max_tokens"].widget.value == 77
    assert panel.model.value == "big-model"
    assert panel.fields["seed"].widget.value == "7"
    assert "Both temperature and top_p are set" in panel.hint.value

    panel.settings.stop = ["\n\n"]
    panel.settings.stream = False
    assert list(panel.fields["stop"].widget.value) == ["\n\n"]
    assert not checked(panel.fields["stream"].widget)

    ip.run_line_magic("chat", "unset temperature")
    assert checked(panel.fields["temperature"].default)
    assert not checked_readout(panel.fields["temperature"].slider)
    assert "Both" not in panel.hint.value


def test_cell_flags_apply_to_that_cell_only_and_do_not_move_the_panel(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    chat(ip, flags="-t 0.1 --max-tokens 50")
    assert last_request(fake_server)["temperature"] == 0.1
    assert checked(panel.fields["temperature"].default)
    assert panel.fields["max_tokens"].widget.value == 1024


def test_conversation_changes_made_by_cells_show_in_the_panel(ip: Any, make_panel: Any) -> None:
    panel = make_panel()
    chat(ip, "One", flags="-s 'You answer in French.'")
    assert panel.system.value == "You answer in French."
    assert "turn 1" in panel.history.value
    assert "One" in panel.history.value
    chat(ip, "Two")
    assert "<b>2</b> turns" in panel.summary.value
    assert panel.chart.value.count("<title>Turn") == 2

    chat(ip, "Fresh start", flags="--new")
    assert "<b>1</b> turn" in panel.summary.value
    assert "Fresh start" in panel.history.value
    assert "Two" not in panel.history.value

    ip.run_line_magic("chat", "system Be brief.")
    assert panel.system.value == "Be brief."
    ip.run_cell("tf_magics.get_chat().system = 'Set from Python.'")
    assert panel.system.value == "Set from Python."


def test_named_conversations_and_switching(
    ip: Any, make_panel: Any, session: NotebookSession
) -> None:
    panel = make_panel()
    panel.system.value = "Default system."
    panel.new_name.value = "draft"
    panel.add_conversation.click()
    assert panel.name == "draft"
    assert panel.conversation_picker.value == "draft"
    assert panel.system.value == ""
    panel.system.value = "Draft system."
    assert session.chat("draft").system == "Draft system."
    assert session.chat("default").system == "Default system."

    panel.conversation_picker.value = "default"
    assert panel.system.value == "Default system."
    chat(ip, "hi", flags="-c draft")
    assert session.chat("draft").conversation.turns()


# -- conversation buttons --------------------------------------------------------------------------


def test_new_undo_and_trim_buttons(ip: Any, make_panel: Any) -> None:
    panel = make_panel()
    assert panel.undo_button.disabled
    panel.system.value = "Stay."
    for text in ("one", "two", "three"):
        chat(ip, text)
    panel.undo_button.click()
    assert [t.user.content for t in panel.conversation.turns()] == ["one", "two"]
    assert "Removed the last turn" in panel.status.value

    panel.trim_keep.value = 1
    panel.trim_button.click()
    assert [t.user.content for t in panel.conversation.turns()] == ["two"]
    assert "Dropped the oldest turn" in panel.status.value

    panel.new_button.click()
    assert panel.conversation.turns() == []
    assert panel.conversation.system == "Stay."
    assert panel.undo_button.disabled


def test_trim_always_sets_history_max_turns(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    panel.trim_keep.value = 2
    panel.trim_auto.value = True
    assert panel.settings.history_max_turns == 2
    for text in ("one", "two", "three"):
        chat(ip, text)
    users = [m["content"] for m in last_request(fake_server)["messages"] if m["role"] == "user"]
    assert users == ["two", "three"]
    panel.trim_auto.value = False
    assert panel.settings.history_max_turns is None


def test_retry_streams_into_the_panel_and_replaces_the_last_answer(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI, session: NotebookSession
) -> None:
    panel = make_panel()
    chat(ip, "Name a prime.")
    fake_server.enqueue(TextReply("Seven is prime.", tokens_per_second=200))
    panel.fields["temperature"].slider.value = 0.9
    panel.retry_button.click()
    request = last_request(fake_server)
    assert request["temperature"] == 0.9
    assert [m["content"] for m in request["messages"]] == ["Name a prime."]
    turns = panel.conversation.turns()
    assert len(turns) == 1
    assert turns[0].reply is not None
    assert turns[0].reply.content == "Seven is prime."
    outputs = panel.replies.outputs
    assert len(outputs) == 1  # streamed pieces consolidated into one output
    assert "Seven is prime." in outputs[0]["data"]["text/html"]
    assert session.last_reply is not None and session.last_reply.text == "Seven is prime."


def test_a_failed_retry_is_shown_in_the_panel_and_keeps_the_old_turn(
    ip: Any, make_panel: Any, fake_server: FakeOpenAI
) -> None:
    from tf_testing.fake_openai import ErrorReply

    panel = make_panel()
    chat(ip, "Question")
    fake_server.enqueue(ErrorReply(400, {"error": {"message": "bad request, sorry"}}))
    panel.retry_button.click()
    assert "bad request, sorry" in panel.status.value
    assert [t.user.content for t in panel.conversation.turns()] == ["Question"]


# -- models ----------------------------------------------------------------------------------------


def test_model_list_is_filled_from_the_server(make_panel: Any, fake_server: FakeOpenAI) -> None:
    fake_server.models = ["alpha", "beta"]
    panel = make_panel()
    assert panel.model.options == ("alpha", "beta")
    fake_server.models = ["gamma"]
    panel.refresh_models.click()
    assert panel.model.options == ("gamma",)
    assert "1 models listed" in panel.status.value


def test_no_models_request_when_asked_not_to_and_a_dead_server_does_not_break_the_panel(
    make_panel: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel(fetch_models=False)
    assert panel.model.options == ()
    assert not [r for r in fake_server.requests if r.path.endswith("/models")]
    panel.settings.base_url = "http://127.0.0.1:9/v1"  # nothing listens on the discard port
    panel.refresh_models.click()
    assert "Could not list the models" in panel.status.value


# -- several panels, one settings object -----------------------------------------------------------


def test_two_panels_on_the_same_conversation_stay_in_sync(ip: Any, make_panel: Any) -> None:
    @tf_magics.tool
    def ping() -> str:
        """Ping."""
        return "pong"

    first, second = make_panel(), make_panel()
    first.fields["temperature"].slider.value = 0.4
    assert second.fields["temperature"].slider.value == 0.4
    assert not checked(second.fields["temperature"].default)
    second.fields["top_p"].default.value = False
    assert not checked(first.fields["top_p"].default)
    first.system.value = "Shared system prompt."
    assert second.system.value == "Shared system prompt."
    first.tool_switches["ping"].value = False
    assert not checked(second.tool_switches["ping"])
    chat(ip, "A question")
    assert "A question" in first.history.value
    assert "A question" in second.history.value
    second.undo_button.click()
    assert "A question" not in first.history.value


# -- the key never reaches widget state ------------------------------------------------------------


def test_the_api_key_never_reaches_widget_state(
    ip: Any, make_panel: Any, session: NotebookSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TOKEN_FACTORY_API_KEY", SECRET + "-env")
    session.settings.api_key = SECRET
    panel = make_panel()
    chat(ip, "Hi")
    panel.fields["temperature"].slider.value = 0.5
    panel.refresh()
    states = [json.dumps(w.get_state(), default=str) for w in panel.all_widgets()]
    assert len(states) > 40  # the walk reaches every control, layout and style
    assert not [s for s in states if SECRET in s]
    assert any("API key set (set in Python)" in s for s in states)
    bundle = panel._repr_mimebundle_()
    assert SECRET not in json.dumps(bundle)


# -- the pictures ----------------------------------------------------------------------------------


def test_sampling_hints() -> None:
    assert sampling_hint(None, None)[0] == "info"
    assert "0 to 0.3 for deterministic" in sampling_hint(None, None)[1]
    assert "deterministic" in sampling_hint(0.2, None)[1]
    assert "creative" in sampling_hint(0.8, None)[1]
    assert "wander" in sampling_hint(1.5, None)[1]
    assert "90%" in sampling_hint(None, 0.9)[1]
    assert sampling_hint(0.2, 0.9)[0] == "warning"


def test_usage_chart_draws_one_bar_per_turn_scaled_to_the_largest() -> None:
    assert "<svg" not in usage_chart_svg([])
    svg = usage_chart_svg(
        [Usage(prompt_tokens=100, completion_tokens=50), None, Usage(prompt_tokens=400)]
    )
    assert svg.startswith("<svg")
    assert svg.count("<title>Turn") == 3
    assert "Turn 2: usage not reported" in svg
    assert "Turn 3: 400 prompt + 0 completion tokens" in svg
    assert ">400<" in svg  # the y axis is labelled with the peak


def test_history_view_escapes_model_output() -> None:
    from tf_magics.types import Completion

    conversation = Conversation("sys <b>bold</b>")
    conversation.add_user("<img src=x onerror=alert(1)>")
    conversation.add_assistant(Completion(content="<script>alert(1)</script>"))
    html = compact_history_html(conversation)
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;" in html
    assert "&lt;b&gt;bold" in html


# -- the bill ----------------------------------------------------------------------------------


def test_prices_and_caps_are_set_from_the_panel_and_the_title_shows_spent_of_cap(
    make_panel: Any, ip: Any, fake_server: FakeOpenAI
) -> None:
    panel = make_panel()
    prices, budget, tokens = (panel.fields[n] for n in ("prices", "budget", "budget_tokens"))
    prices.widget.value = "fake-model: 3 / 15; llama3:8b: 0 / 0 / 0"
    assert panel.settings.prices == {"fake-model": [3.0, 15.0], "llama3:8b": [0.0, 0.0, 0.0]}
    budget.widget.value = "0.5"
    assert panel.settings.budget == 0.5
    assert "spent $0.00 of $0.50" in panel.title.value
    tokens.widget.value = "20,000"
    assert panel.settings.budget_tokens == 20_000
    fake_server.enqueue(
        TextReply(
            "ok", usage={"prompt_tokens": 2_000, "completion_tokens": 1_000, "total_tokens": 3_000}
        )
    )
    ip.run_line_magic("config", "ChatSettings.model = 'fake-model'")
    chat(ip)
    panel.refresh()
    assert "spent $0.021 of $0.50, 3,000 of 20,000 tokens" in panel.title.value
    budget.widget.value = ""
    assert panel.settings.budget is None


def test_bad_prices_and_caps_are_refused_with_a_message(make_panel: Any) -> None:
    panel = make_panel()
    panel.fields["prices"].widget.value = "fake-model 3 / 15"
    assert panel.settings.prices == {}
    assert "Prices look like" in panel.status.value
    panel.fields["budget"].widget.value = "lots"
    assert panel.settings.budget is None
    assert "must be a number" in panel.status.value
    panel.fields["budget_tokens"].widget.value = "1.5"
    assert panel.settings.budget_tokens is None
    assert "whole number of tokens" in panel.status.value
    # Settings changed elsewhere show in the panel.
    panel.settings.prices = {"m": [1, 2]}
    assert panel.fields["prices"].widget.value == "m: 1 / 2"
