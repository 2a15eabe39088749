"""The record/replay mode in force: the setting, unless ``TF_MAGICS_CACHE`` says otherwise.

Small on purpose: the settings read it for every request, and importing it must cost nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from tf_magics.errors import ConfigurationError
from tf_magics.options import CACHE_MODES

__all__ = ["MODE_ENV", "CacheMode", "cache_mode"]

MODE_ENV = "TF_MAGICS_CACHE"
CacheMode = Literal["off", "auto", "record", "replay"]


def cache_mode(setting: str, env: Mapping[str, str]) -> tuple[CacheMode, str]:
    """The mode in force and what set it: ``TF_MAGICS_CACHE`` wins over the setting.

    Raises
    ------
    ConfigurationError
        When the environment variable holds something else than a mode.
    """
    raw = (env.get(MODE_ENV) or "").strip()
    if raw:
        if raw.lower() not in CACHE_MODES:
            raise ConfigurationError(
                f"{MODE_ENV} must be one of {', '.join(CACHE_MODES)}, got {raw[:30]!r}."
            )
        return raw.lower(), MODE_ENV  # type: ignore[return-value]
    mode = setting if setting in CACHE_MODES else "off"
    return mode, "ChatSettings.cache"  # type: ignore[return-value]
