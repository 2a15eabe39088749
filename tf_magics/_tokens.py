"""Cheap token estimates for text and content parts (no tokenizer, no network).

Text is about four characters per token, the estimate used everywhere in tf_magics. An image
costs what OpenAI's vision models charge for it at the default ("high") detail: the image is fit
within 2048 × 2048, its shorter side scaled to 768, and it costs 85 tokens plus 170 per 512-pixel
tile. The size is read from the PNG or JPEG header inside the data URI, without decoding it.
"""

from __future__ import annotations

import base64
import binascii
import math
import struct
from typing import Any

__all__ = [
    "DEFAULT_IMAGE_TOKENS",
    "data_uri_size",
    "image_size",
    "image_tokens",
    "part_tokens",
    "text_tokens",
]

#: The estimate for an image whose size cannot be read (a 1024 × 1024 image).
DEFAULT_IMAGE_TOKENS = 765
_HEADER_BYTES = 64 * 1024  # a JPEG's size may come after its metadata


def text_tokens(text: str) -> int:
    """About four characters per token."""
    return (len(text) + 3) // 4


def image_size(data: bytes) -> tuple[int, int] | None:
    """``(width, height)`` from the first bytes of a PNG, JPEG, GIF or WebP image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    position = 2
    while position + 9 < len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        # Start-of-frame markers (not DHT, JPG or DAC) hold the height and width.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        position += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X" and len(data) >= 30:
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 " and len(data) >= 30:
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L" and len(data) >= 25:
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def image_tokens(width: int, height: int) -> int:
    """What a vision model charges for an image of this size (OpenAI's high-detail rule)."""
    if width <= 0 or height <= 0:
        return DEFAULT_IMAGE_TOKENS
    scale = min(1.0, 2048 / max(width, height))
    wide, high = width * scale, height * scale
    scale = min(1.0, 768 / min(wide, high))
    wide, high = wide * scale, high * scale
    return 85 + 170 * math.ceil(wide / 512) * math.ceil(high / 512)


def data_uri_size(url: str) -> tuple[int, int] | None:
    """The size of the image in a ``data:`` URI, from its header only."""
    if not url.startswith("data:") or ";base64," not in url[:100]:
        return None
    encoded = url.split(",", 1)[1][: _HEADER_BYTES * 4 // 3]
    encoded = encoded[: len(encoded) - len(encoded) % 4]
    try:
        return image_size(base64.b64decode(encoded))
    except (binascii.Error, ValueError, struct.error):
        return None


def part_tokens(part: dict[str, Any]) -> int:
    """The estimate for one content part (text, or an image by its size)."""
    if part.get("type") == "text":
        return text_tokens(str(part.get("text") or ""))
    if part.get("type") == "image_url":
        image = part.get("image_url")
        url = image.get("url") if isinstance(image, dict) else None
        size = data_uri_size(url) if isinstance(url, str) else None
        return image_tokens(*size) if size else DEFAULT_IMAGE_TOKENS
    return 0
