"""Every other kind of value as an attachment: text, data, files, images, errors and code."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tf_magics import Attachment, Source
from tf_magics._secrets import SecretScanner
from tf_magics._tokens import image_size
from tf_magics.context import attach, context_items
from tf_magics.errors import AttachmentError


def one(value: Any, *, tokens: int = 500, name: str = "x", **kwargs: Any) -> Attachment:
    (attachment,) = attach([(name, value)], max_tokens=tokens, **kwargs)
    return attachment


def png(width: int = 64, height: int = 48) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- what is attached, and how it is named ---------------------------------------------------------


def test_context_takes_values_pairs_and_mappings_and_never_iterates_a_value() -> None:
    assert context_items(None) == []
    assert context_items([1, ("n", 2)]) == [(None, 1), ("n", 2)]
    assert context_items({"a": 1}) == [("a", 1)]
    assert context_items(("pair", 3)) == [("pair", 3)]
    assert context_items("text") == [(None, "text")]
    names = [a.name for a in attach([1, ("n", 2), 3], max_tokens=100)]
    assert names == ["1", "n", "3"]
    assert attach([5], max_tokens=100)[0].text.startswith("Attachment 1 (int):")


def test_text_is_sent_as_it_is_and_cut_to_the_budget_with_a_note() -> None:
    short = one("Be brief.")
    assert short.text == "Attachment `x` (str, 9 characters):\nBe brief."
    long = one("word " * 2_000, tokens=100)
    assert long.description == "str, 10,000 characters"
    assert long.notes == ("truncated: 10,000 characters, showing the first 320",)
    assert len(long.text) - len(long.text.split("\n", 1)[0]) <= 100 * 4


def test_containers_become_json_cut_down_before_they_are_written() -> None:
    data = {"ids": list(range(10_000_000)), "name": "run-7", "nested": {"a": {"b": [1, 2]}}}
    attachment = one(data, tokens=300)
    body = attachment.text.split("\n", 1)[1]
    assert attachment.description == "dict, 3 keys"
    assert '"name": "run-7"' in body and '"nested": {"a": {"b": [1, 2]}}' in body
    assert "more items" in body and "9,99" in body
    assert any("elided" in note for note in attachment.notes)
    assert len(body) <= 300 * 4
    assert json.loads(one([1, "a", None, 2.5]).text.split("\n", 1)[1]) == [1, "a", None, 2.5]


def test_a_secret_deep_in_a_long_string_of_a_dict_is_masked_before_the_cut() -> None:
    secret = "tok_" + "9f8e7d6c5b4a" * 4
    scanner = SecretScanner((("WAREHOUSE_TOKEN", secret),))
    value = {"log": "x" * 480 + secret + "y" * 200}
    text = one(value, scanner=scanner).text
    assert secret[:12] not in text and "[redacted: WAREHOUS" in text


def test_scalars_and_a_repr_that_fails() -> None:
    assert one(3.5).text == "Attachment `x` (float):\n3.5"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    text = one(Broken()).text
    assert "repr() failed: RuntimeError: no repr" in text


def test_repr_llm_wins_then_markdown_then_a_bounded_repr() -> None:
    class Both:
        def _repr_llm_(self) -> str:
            return "for the model"

        def _repr_markdown_(self) -> str:
            return "**for people**"

    class Markdown:
        def _repr_markdown_(self) -> tuple[str, dict[str, Any]]:
            return "**for people**", {}

    class Long:
        def __repr__(self) -> str:
            return "L" * 100_000

    assert one(Both()).text.endswith("for the model")
    assert one(Markdown()).text.endswith("**for people**")
    long = one(Long(), tokens=100)
    assert len(long.text) < 600 and long.notes


# -- files -----------------------------------------------------------------------------------------


def test_a_text_file_a_folder_an_image_and_a_binary_file(tmp_path: Path) -> None:
    csv = tmp_path / "data.csv"
    csv.write_text("a,b\n" + "1,2\n" * 50_000, encoding="utf-8")
    text = one(csv, tokens=100)
    assert text.description == "text file data.csv, 200.0 kB" and text.text.count("1,2") > 10
    assert any("showing the first" in note or "truncated" in note for note in text.notes)
    (tmp_path / "sub").mkdir()
    folder = one(tmp_path)
    assert "sub/" in folder.text and "data.csv  200.0 kB" in folder.text
    picture = tmp_path / "plot.png"
    picture.write_bytes(png())
    image = one(picture)
    assert image.images and image.images[0].startswith("data:image/png;base64,")
    assert "file plot.png, PNG image 64×48" in image.description
    binary = tmp_path / "model.bin"
    binary.write_bytes(bytes(range(256)) * 10)
    with pytest.raises(AttachmentError, match=r"model\.bin: it is a binary file"):
        one(binary)
    with pytest.raises(AttachmentError, match="no such file"):
        one(tmp_path / "missing.csv")


def test_latin1_text_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "old.txt"
    path.write_bytes("Café au lait, crème brûlée\n".encode("latin-1") * 20)
    assert "Caf" in one(path).text


# -- images ----------------------------------------------------------------------------------------


def test_image_bytes_become_an_image_part_with_a_label() -> None:
    attachment = one(png(), name="photo")
    label, image = attachment.parts
    assert label == {"type": "text", "text": "Attachment `photo` (image bytes, PNG image 64×48):"}
    assert image["type"] == "image_url"
    data = base64.b64decode(image["image_url"]["url"].split(",", 1)[1])
    assert image_size(data) == (64, 48)
    assert attachment.thumbnail is not None and attachment.thumbnail.startswith("data:image/png")


def test_a_large_pil_image_is_scaled_down_and_a_jpeg_stays_jpeg() -> None:
    from PIL import Image

    big = Image.new("RGB", (4_000, 1_000), (0, 90, 200))
    attachment = one(big)
    data = base64.b64decode(attachment.images[0].split(",", 1)[1])
    assert image_size(data) == (1024, 256)
    assert attachment.notes == ("scaled down from 4000×1000",)
    buffer = io.BytesIO()
    big.save(buffer, format="JPEG")
    photo = Image.open(io.BytesIO(buffer.getvalue()))
    assert one(photo).images[0].startswith("data:image/jpeg;base64,")


def test_a_matplotlib_figure_and_its_axes_become_a_png() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([1, 3, 2])
    try:
        attachment = one(figure, name="fig")
        assert attachment.description.startswith("matplotlib Figure, PNG image ")
        width, height = image_size(base64.b64decode(attachment.images[0].split(",", 1)[1])) or (
            0,
            0,
        )
        # Drawn for a vision model (about 1024 pixels wide), not at screen size (640).
        assert 800 <= max(width, height) <= 1100
        assert one(axes, name="ax").images
    finally:
        plt.close(figure)


def test_an_object_that_shows_itself_as_a_png() -> None:
    from IPython.display import Image

    attachment = one(Image(data=png(), format="png"), name="shown")
    assert attachment.images and "Image (IPython)" in attachment.description


def test_without_pil_an_image_goes_without_thumbnail_and_a_huge_one_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tf_magics.context import images

    data = png()
    monkeypatch.setitem(sys.modules, "PIL", None)  # import PIL now fails
    attachment = one(data)
    assert attachment.images and attachment.thumbnail is None
    monkeypatch.setattr(images, "MAX_BYTES", 100)
    with pytest.raises(AttachmentError, match=r"too large to attach.*Install Pillow"):
        one(data)


def test_binary_bytes_are_refused_text_bytes_are_text() -> None:
    with pytest.raises(AttachmentError, match="binary data"):
        one(bytes(range(256)))
    assert one(b"plain text").text.endswith("plain text")


# -- errors and code -------------------------------------------------------------------------------


def _raise_from_a_library() -> BaseException:
    import json as library

    def parse(text: str) -> Any:
        return library.loads(text)

    try:
        try:
            parse("{broken")
        except ValueError as error:
            raise RuntimeError("could not read the settings") from error
    except RuntimeError as error:
        return error
    raise AssertionError


def test_an_exception_has_its_message_a_trimmed_traceback_and_its_cause() -> None:
    attachment = one(_raise_from_a_library(), name="error")
    text = attachment.text
    assert attachment.description == "RuntimeError (an exception)"
    assert "RuntimeError: could not read the settings" in text
    assert "(caused by: json.decoder.JSONDecodeError: Expecting property name" in text
    assert "in _raise_from_a_library" in text


def test_a_cell_is_named_and_its_source_shown_with_the_failing_line_marked() -> None:
    source = "total = 10\ncount = 0\nratio = total / count\n"
    filename = "<cell-7>"
    code = compile(source, filename, "exec")
    try:
        exec(code, {})
    except ZeroDivisionError as error:
        caught = error

    def cells(name: str) -> tuple[str, str] | None:
        return ("In [7]", source) if name == filename else None

    attachment = one(caught, name="error", code_cells=cells)
    assert attachment.description == "ZeroDivisionError raised in cell In [7]"
    assert "Cell In [7], line 3, in <module>" in attachment.text
    assert "→3 | ratio = total / count" in attachment.text
    assert " 1 | total = 10" in attachment.text


def test_library_frames_are_folded_but_the_one_that_raised_is_shown() -> None:
    import fractions

    try:
        fractions.Fraction(1, 0)
    except ZeroDivisionError as error:
        caught = error
    text = one(caught).text
    assert "fractions.py" in text  # the frame that raised
    assert "line" in text and "ZeroDivisionError: Fraction(1, 0)" in text


def greet(name: str, punctuation: str = "!") -> str:
    """Say hello.

    Longer explanation here.
    """
    return f"Hello, {name}{punctuation}"


class Counter:
    """Counts things."""

    def add(self, n: int = 1) -> None:
        """Add n."""

    @property
    def total(self) -> int:
        """The count so far."""
        return 0


def test_functions_classes_and_modules_show_what_help_shows() -> None:
    function = one(greet, name="greet").text
    assert "test_values.greet(name: str, punctuation: str = '!') -> str" in function
    assert "Longer explanation here." in function and "return f" not in function
    cls = one(Counter, name="Counter").text
    assert "Counts things." in cls and "- add(self, n: int = 1) -> None: Add n." in cls
    assert "- total (property): The count so far." in cls
    module = one(textwrap, name="textwrap")
    assert module.description == "module textwrap" and "- dedent(text)" in module.text


def test_source_on_request() -> None:
    source = one(Source(greet), name="greet")
    assert source.description.startswith("source of function ")
    assert 'return f"Hello, {name}{punctuation}"' in source.text
    assert one(Source(42)).text.endswith("42")  # only code has a source


def test_without_pandas_numpy_matplotlib_or_pil_plain_values_still_attach() -> None:
    code = (
        "import sys\n"
        "sys.modules.update(pandas=None, numpy=None, matplotlib=None, PIL=None)\n"
        "from tf_magics.context import attach\n"
        "print(attach([('d', {'a': [1, 2]}), ('s', 'hi')], max_tokens=100)[0].text)\n"
        "assert not {'pandas', 'numpy'} & {m for m in sys.modules if sys.modules[m]}\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert 'Attachment `d` (dict, 1 keys):\n{"a": [1, 2]}' in out.stdout


def test_attachments_read_back_from_the_parts_that_were_sent() -> None:
    sent = attach([("df", {"a": 1}), ("pic", png()), ("note", "hi")], max_tokens=100)
    parts = [part for attachment in sent for part in attachment.parts]
    again = Attachment.from_parts(parts)
    assert [(a.name, a.description, a.parts) for a in again] == [
        (a.name, a.description, a.parts) for a in sent
    ]
    loose = Attachment.from_parts([{"type": "image_url", "image_url": {"url": "data:,"}}])
    assert loose[0].name == "1" and loose[0].description == "image"
