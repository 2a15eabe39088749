"""Images for vision models: matplotlib figures, PIL images, PNG/JPEG bytes, ``_repr_png_``.

Each becomes an encoded image (sent as an ``image_url`` part with a ``data:`` URI) no larger than
:data:`MAX_SIDE` pixels on its long side, which is what vision models work at anyway; a small
thumbnail is made for the cell's output when PIL is there (it comes with matplotlib).
matplotlib and PIL are never imported unless the value is one of theirs.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

from tf_magics._tokens import image_size
from tf_magics.errors import AttachmentError

from .budget import Budget, ImageData, Summary, module_root

__all__ = [
    "MAX_BYTES",
    "MAX_SIDE",
    "data_uri",
    "image_mime",
    "is_axes",
    "is_figure",
    "is_image_bytes",
    "is_pil_image",
    "repr_image",
    "summarise_axes",
    "summarise_figure",
    "summarise_image_bytes",
    "summarise_pil",
    "summarise_repr_image",
]

#: The longest side, in pixels, of an image sent to the model.
MAX_SIDE = 1024
#: Larger encoded images are re-encoded smaller (with PIL) or refused (without it).
MAX_BYTES = 4 * 1024 * 1024
_THUMBNAIL_SIDE = 240
_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)


def image_mime(data: bytes) -> str | None:
    """The MIME type of PNG, JPEG, GIF or WebP bytes (from their first bytes), else ``None``."""
    for magic, mime in _MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def data_uri(data: bytes, mime: str) -> str:
    """``data:<mime>;base64,...``."""
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def _mro_has(value: Any, module_prefix: str, names: tuple[str, ...]) -> bool:
    return any(
        cls.__name__ in names and (cls.__module__ or "").startswith(module_prefix)
        for cls in type(value).__mro__
    )


def is_figure(value: Any) -> bool:
    """A matplotlib Figure (or SubFigure)."""
    return _mro_has(value, "matplotlib", ("Figure", "SubFigure")) and hasattr(value, "savefig")


def is_axes(value: Any) -> bool:
    """A matplotlib Axes (what ``df.plot()`` returns): its figure is attached."""
    return _mro_has(value, "matplotlib", ("Axes",)) and hasattr(value, "get_figure")


def is_pil_image(value: Any) -> bool:
    """A PIL image."""
    return _mro_has(value, "PIL", ("Image",)) and hasattr(value, "save")


def is_image_bytes(value: Any) -> bool:
    """PNG, JPEG, GIF or WebP bytes."""
    return (
        isinstance(value, (bytes, bytearray, memoryview))
        and image_mime(bytes(value[:16])) is not None
    )


def _thumbnail(data: bytes) -> str | None:
    """A small PNG to show in the cell (``None`` without PIL, or if PIL cannot read the image)."""
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as image:
            image.thumbnail((_THUMBNAIL_SIDE, _THUMBNAIL_SIDE))
            buffer = io.BytesIO()
            _rgb_or_rgba(image).save(buffer, format="PNG")
    except Exception:  # the image is still sent; only the thumbnail is missing
        return None
    return data_uri(buffer.getvalue(), "image/png")


def _rgb_or_rgba(image: Any) -> Any:
    if image.mode in ("1", "L", "LA", "P", "RGB", "RGBA"):
        return image
    has_alpha = "A" in image.getbands()
    return image.convert("RGBA" if has_alpha else "RGB")


def _summary(kind: str, data: bytes, mime: str, notes: list[str] | None = None) -> Summary:
    size = image_size(data) or (0, 0)
    shown = f"{size[0]}×{size[1]}" if size[0] else "size unknown"
    description = f"{kind}, {mime.split('/')[1].upper()} image {shown}"
    image = ImageData(data, mime, *size)
    return Summary(description, "", notes or [], image=image, thumbnail=_thumbnail(data))


def summarise_figure(figure: Any, budget: Budget) -> Summary:
    """A matplotlib figure, drawn to PNG with its long side near :data:`MAX_SIDE` pixels."""
    width, height = figure.get_size_inches()
    dpi = MAX_SIDE / max(width, height, 0.01)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    return _summary(f"matplotlib {type(figure).__name__}", buffer.getvalue(), "image/png")


def summarise_axes(axes: Any, budget: Budget) -> Summary:
    """The figure an Axes belongs to."""
    summary = summarise_figure(axes.get_figure(), budget)
    summary.description = summary.description.replace("Figure", "Figure (of the Axes)", 1)
    return summary


def summarise_pil(image: Any, budget: Budget) -> Summary:
    """A PIL image, scaled down to :data:`MAX_SIDE` pixels, as PNG (JPEG if it was one)."""
    original = f"{image.width}×{image.height}"
    copy = image.copy()
    copy.thumbnail((MAX_SIDE, MAX_SIDE))
    jpeg = (image.format or "").upper() in ("JPEG", "MPO")
    buffer = io.BytesIO()
    if jpeg:
        copy.convert("RGB").save(buffer, format="JPEG", quality=90)
    else:
        _rgb_or_rgba(copy).save(buffer, format="PNG")
    notes = [] if copy.size == image.size else [f"scaled down from {original}"]
    return _summary("PIL image", buffer.getvalue(), "image/jpeg" if jpeg else "image/png", notes)


def summarise_image_bytes(value: Any, budget: Budget) -> Summary:
    """Encoded image bytes, sent as they are unless larger than :data:`MAX_BYTES`."""
    data = bytes(value)
    mime = image_mime(data[:16]) or "application/octet-stream"
    if len(data) <= MAX_BYTES:
        return _summary("image bytes", data, mime)
    try:
        from PIL import Image
    except ImportError:
        raise AttachmentError(
            f"The image is too large to attach ({len(data):,} bytes; at most {MAX_BYTES:,}).",
            hint="Install Pillow to have it scaled down, or attach a smaller image.",
        ) from None
    with Image.open(io.BytesIO(data)) as image:
        return summarise_pil(image, budget)


def repr_image(value: Any) -> tuple[bytes, str] | None:
    """The PNG or JPEG an object shows itself as (``_repr_png_`` / ``_repr_jpeg_``), if any."""
    for method, mime in (("_repr_png_", "image/png"), ("_repr_jpeg_", "image/jpeg")):
        function = getattr(value, method, None)
        if not callable(function) or isinstance(value, type):
            continue
        try:
            data = function()
        except Exception:
            continue
        if isinstance(data, tuple) and data:
            data = data[0]  # (data, metadata), as IPython allows
        if isinstance(data, str):  # IPython's Image gives base64 text
            try:
                data = base64.b64decode(data)
            except (binascii.Error, ValueError):
                continue
        if isinstance(data, (bytes, bytearray)) and data:
            return bytes(data), image_mime(bytes(data[:16])) or mime
    return None


def summarise_repr_image(value: Any, budget: Budget) -> Summary:
    """An object that shows itself as a PNG or JPEG (IPython's ``Image``, sympy, graphviz…)."""
    found = repr_image(value)
    assert found is not None
    data, _ = found
    summary = summarise_image_bytes(data, budget)
    summary.description = summary.description.replace(
        "image bytes", f"{type(value).__name__} ({module_root(value) or 'object'})", 1
    )
    return summary
