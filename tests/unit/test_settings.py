from __future__ import annotations

import pytest
from traitlets import TraitError

from tf_magics.credentials import OPENAI_URL
from tf_magics.errors import ConfigurationError
from tf_magics.settings import ChatSettings

SECRET = "sk-test-secret-value-1234567890abcdef"


def test_unset_parameters_are_not_sent_but_max_tokens_always_is() -> None:
    body = ChatSettings(base_url="http://h/v1").resolve(env={}).request_body([])
    assert body == {"messages": [], "max_tokens": 1024, "stream": True}


def test_temperature_zero_is_sent_as_zero() -> None:
    options = ChatSettings(base_url="http://h/v1", temperature=0).resolve(env={})
    assert options.request_body([])["temperature"] == 0


def test_cell_overrides_win_and_none_means_not_given() -> None:
    settings = ChatSettings(base_url="http://h/v1", temperature=0.7, seed=3)
    options = settings.resolve(env={}, temperature=0.1, seed=None, top_p=0.5)
    assert options.sampling == {"temperature": 0.1, "seed": 3, "top_p": 0.5}
    assert settings.temperature == 0.7  # the shared object is untouched


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("temperature", 2.5),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("presence_penalty", 3),
        ("frequency_penalty", -2.5),
        ("temperature", "hot"),
    ],
)
def test_out_of_range_values_fail_before_any_request(name: str, value: object) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ChatSettings(base_url="http://h/v1").resolve(env={}, **{name: value})
    assert name in str(caught.value)
    assert "\n" not in str(caught.value)


def test_traits_validate_ranges_too() -> None:
    settings = ChatSettings()
    with pytest.raises(TraitError, match="between 0 and 2"):
        settings.temperature = 3
    with pytest.raises(TraitError, match="at least 1"):
        settings.max_tokens = 0


def test_stop_accepts_a_string_and_refuses_more_than_four() -> None:
    settings = ChatSettings(base_url="http://h/v1")
    assert settings.resolve(env={}, stop="END").sampling["stop"] == ["END"]
    with pytest.raises(ConfigurationError, match="At most 4"):
        settings.resolve(env={}, stop=["a", "b", "c", "d", "e"])


def test_bad_base_url_says_how_to_fix_it() -> None:
    with pytest.raises(ConfigurationError, match="include the /v1"):
        ChatSettings().resolve(env={}, base_url="api.example.com/v1")


def test_token_factory_environment() -> None:
    env = {
        "TOKEN_FACTORY_API_KEY": SECRET,
        "TOKEN_FACTORY_BASE_URL": "https://tf.example/v1",
        "TOKEN_FACTORY_MODEL": "meta/llama",
    }
    options = ChatSettings().resolve(env=env)
    assert options.base_url == "https://tf.example/v1"
    assert options.api_key is not None and options.api_key.reveal() == SECRET
    assert options.model == "meta/llama"
    assert options.key_source == "TOKEN_FACTORY_API_KEY"


def test_token_factory_base_url_from_environment() -> None:
    env = {"TOKEN_FACTORY_BASE_URL": "http://127.0.0.1:9/v1/", "TOKEN_FACTORY_API_KEY": SECRET}
    options = ChatSettings().resolve(env=env)
    assert options.base_url == "http://127.0.0.1:9/v1"


def test_openai_variables_are_the_fallback() -> None:
    options = ChatSettings().resolve(env={"OPENAI_API_KEY": SECRET})
    assert options.base_url == OPENAI_URL
    assert options.api_key is not None and options.api_key.reveal() == SECRET


def test_an_openai_key_is_never_sent_to_a_token_factory_url() -> None:
    env = {"OPENAI_API_KEY": SECRET, "TOKEN_FACTORY_BASE_URL": "http://127.0.0.1:9/v1"}
    options = ChatSettings().resolve(env=env)
    assert options.base_url == "http://127.0.0.1:9/v1"
    assert options.api_key is None


def test_explicit_values_win_over_the_environment() -> None:
    env = {"TOKEN_FACTORY_API_KEY": "env-key", "TOKEN_FACTORY_BASE_URL": "http://env/v1"}
    settings = ChatSettings(base_url="https://explicit/v1", api_key="explicit-key", model="m")
    options = settings.resolve(env=env)
    assert (options.base_url, options.model) == ("https://explicit/v1", "m")
    assert options.api_key is not None and options.api_key.reveal() == "explicit-key"


def test_nothing_configured_leaves_the_base_url_open() -> None:
    options = ChatSettings().resolve(env={})
    assert options.base_url is None and options.api_key is None


def test_the_key_never_appears_in_repr_summary_or_help() -> None:
    settings = ChatSettings(api_key=SECRET, base_url="https://h/v1")
    options = settings.resolve(env={})
    shown = [
        repr(settings),
        repr(options),
        str(settings.summary(env={})),
        settings.class_get_help(settings),
        str(settings.trait_values()),
    ]
    for text in shown:
        assert SECRET not in text
    assert settings.key_status(env={}) == "set (set in Python)"
    assert "api_key" not in settings.trait_names()


def test_key_status_names_the_environment_variable() -> None:
    env = {"TOKEN_FACTORY_API_KEY": SECRET, "TOKEN_FACTORY_BASE_URL": "https://tf.example/v1"}
    assert ChatSettings().key_status(env=env) == "set (TOKEN_FACTORY_API_KEY)"
    assert ChatSettings().key_status(env={}) == "not set"
    other = ChatSettings(base_url="https://elsewhere.example/v1")
    assert other.key_status(env=env) == "not sent to this server"


def test_unknown_override_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Unknown setting"):
        ChatSettings().resolve(env={}, temprature=1)


def test_summary_says_when_the_local_model_will_be_used() -> None:
    assert ChatSettings().summary(env={})["base_url"].startswith("local: the built-in demo model")
    assert ChatSettings(base_url="local").summary(env={})["base_url"].startswith("local:")


def test_a_setting_with_choices_takes_only_those() -> None:
    settings = ChatSettings(cache=" Replay ")
    assert settings.cache == "replay"
    with pytest.raises(TraitError, match="cache must be one of off, auto, record, replay"):
        settings.cache = "sometimes"
    with pytest.raises(ConfigurationError, match="replay_pace must be one of instant, recorded"):
        settings.resolve(replay_pace="fast")


def test_replay_mode_sends_no_key_and_refuses_nothing() -> None:
    env = {"TOKEN_FACTORY_API_KEY": "sk-secret", "TF_MAGICS_CACHE": "replay"}
    options = ChatSettings().resolve(env=env)
    assert options.api_key is None and options.hook is not None and options.hook.offline
    with pytest.raises(ConfigurationError, match="TOKEN_FACTORY_BASE_URL"):
        ChatSettings().resolve(env={"TOKEN_FACTORY_API_KEY": "sk-secret"})
    assert ChatSettings().resolve(env={}).hook is None  # off: no layer at all
