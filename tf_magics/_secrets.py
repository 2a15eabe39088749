"""Secrets that must never leave the machine by accident: found in outgoing text and masked.

Before anything is sent, every outgoing text (the question, attachments, the system prompt, tool
results, the history) goes through one :class:`SecretScanner`. It knows the configured API key
and the values of environment variables whose names look secret (``*_KEY``, ``*_TOKEN``,
``*_SECRET``, ``*PASSWORD*``), and replaces each occurrence with a marker that names where the
value came from (``[redacted: OPENAI_API_KEY]``), never the value itself.

Values shorter than :data:`MIN_SECRET_LENGTH` characters are ignored: ``DEBUG_KEY=1`` or a
``*_TOKEN`` set to ``true`` would otherwise mask every ``1`` and ``true`` in a conversation.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "MIN_SECRET_LENGTH",
    "SECRET_NAME_PATTERNS",
    "SecretScanner",
    "looks_secret",
    "redaction_marker",
]

#: Environment variable names whose values are treated as secrets (matched case-insensitively).
SECRET_NAME_PATTERNS = ("*_KEY", "*_TOKEN", "*_SECRET", "*PASSWORD*")
#: Shorter values are not treated as secrets (too many false hits).
MIN_SECRET_LENGTH = 8
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def looks_secret(name: str) -> bool:
    """Whether an environment variable's name says its value is a secret."""
    upper = name.upper()
    return any(fnmatch.fnmatchcase(upper, pattern) for pattern in SECRET_NAME_PATTERNS)


def redaction_marker(name: str) -> str:
    """What a secret is replaced with: ``[redacted: NAME]``."""
    return f"[redacted: {name}]"


@dataclass(frozen=True)
class SecretScanner:
    """Finds known secret values in text and replaces them with a marker naming their source.

    Parameters
    ----------
    secrets
        ``(name, value)`` pairs; the name is what the marker shows (an environment variable's
        name, or ``"API key"``).
    """

    secrets: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        keys: Iterable[tuple[str, str]] = (),
    ) -> SecretScanner:
        """A scanner for ``keys`` (the configured API key) and the environment's secrets.

        Parameters
        ----------
        env
            The environment to read (default: ``os.environ``, read now).
        keys
            ``(source, value)`` of keys configured elsewhere (``api_key=`` in Python); a source
            that is not a variable name is shown as ``"API key"``.
        """
        env = os.environ if env is None else env
        found: dict[str, str] = {}
        for source, value in keys:
            name = source if _ENV_NAME.fullmatch(source or "") else "API key"
            found.setdefault(value.strip(), name)
        for name in sorted(env):
            value = env[name].strip()
            if looks_secret(name):
                found.setdefault(value, name)
        pairs = [(name, value) for value, name in found.items() if len(value) >= MIN_SECRET_LENGTH]
        # Longest first, so a secret that contains another is masked whole.
        pairs.sort(key=lambda pair: len(pair[1]), reverse=True)
        return cls(tuple(pairs))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def redact(self, text: str) -> tuple[str, list[str]]:
        """``text`` with every secret replaced by its marker, and the names of those found.

        Mask before cutting text short: a cut can split a secret so that the part left no longer
        matches it.
        """
        found: list[str] = []
        for name, value in self.secrets:
            if value in text:
                text = text.replace(value, redaction_marker(name))
                found.append(name)
        return text, found

    def names(self) -> list[str]:
        """The names of the secrets it looks for (never their values)."""
        return [name for name, _ in self.secrets]

    def __repr__(self) -> str:
        return f"<SecretScanner: {len(self.secrets)} secrets ({', '.join(self.names())})>"
