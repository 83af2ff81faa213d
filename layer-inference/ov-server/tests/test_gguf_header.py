"""Our GGUF header reader against gguf-py's `GGUFReader` (the reference) on both built-in models'
files, and on files cut short or not GGUF at all."""

from __future__ import annotations

import logging

import gguf
import pytest

from ov_server.chat_model import chat_model_path
from ov_server.gguf_header import GGUFHeaderError, context_length, gguf_fields
from ov_server.model_files import read_context_length
from ov_server.tiny_model import build_tiny_model


@pytest.fixture(scope="module", params=["jerry-tiny", "jerry-chat"])
def model(request, tmp_path_factory):
    if request.param == "jerry-tiny":
        return build_tiny_model(tmp_path_factory.mktemp("tiny"))
    return chat_model_path()


def reference(path) -> list[tuple[str, object]]:
    """gguf-py's view of every field: scalars and strings as values, arrays as None."""
    out = []
    for key, field in gguf.GGUFReader(str(path)).fields.items():
        if key.startswith("GGUF."):  # the reader's own pseudo-fields (version, counts)
            continue
        vtype = field.types[0]
        if vtype == gguf.GGUFValueType.ARRAY:
            out.append((key, None))
        elif vtype == gguf.GGUFValueType.STRING:
            out.append((key, bytes(field.parts[-1]).decode("utf-8", errors="replace")))
        else:
            out.append((key, field.parts[-1][0].item()))
    return out


def test_every_field_matches_gguf_py_in_order(model):
    ours = list(gguf_fields(model))
    ref = reference(model)
    assert [k for k, _ in ours] == [k for k, _ in ref]
    for (key, mine), (_, theirs) in zip(ours, ref, strict=True):
        if isinstance(theirs, float):
            assert mine == pytest.approx(theirs), key
        else:
            assert mine == theirs, key
    assert sum(v is None for _, v in ours) >= 1, "the vocabulary arrays were skipped, not lost"


def test_context_length_is_the_architectures_own(model):
    ref = dict(reference(model))
    arch = ref["general.architecture"]
    assert context_length(model) == ref[f"{arch}.context_length"] == read_context_length(model)


def test_a_file_cut_inside_the_vocabulary_is_an_error_naming_where(tmp_path):
    src = chat_model_path().read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(src[:200_000])  # the key/value header (three 49,152-entry arrays; tensor data starts at ~1.7 MB) is cut short
    with pytest.raises(GGUFHeaderError, match=r"runs past the end|truncated at byte \d+"):
        list(gguf_fields(cut))


def test_a_file_that_is_not_gguf_is_refused_and_serving_falls_back_to_the_default(tmp_path, caplog):
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"PK\x03\x04 not a gguf file at all")
    with pytest.raises(GGUFHeaderError, match="not a GGUF file"):
        list(gguf_fields(bad))
    with caplog.at_level(logging.WARNING, logger="ov_server.models"):
        assert read_context_length(bad) is None
    assert "could not read context length from" in caplog.text and "not a GGUF file" in caplog.text


def test_an_unknown_version_is_named(tmp_path):
    bad = tmp_path / "v9.gguf"
    bad.write_bytes(b"GGUF" + (9).to_bytes(4, "little") + bytes(16))
    with pytest.raises(GGUFHeaderError, match="GGUF version 9"):
        list(gguf_fields(bad))
