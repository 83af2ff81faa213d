"""The GGUF -> IR conversion cache (converted.py), on the real OpenVINO with the tiny model:
written once and read after, complete or rebuilt, never trusted after a load from it died."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import openvino_genai as ov_genai
import pytest

from ov_server import converted
from ov_server.converted import MANIFEST, MODEL_FILES, TOKENIZER_FILES, load_converted
from ov_server.tiny_model import build_tiny_model

F32 = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}
FILES = TOKENIZER_FILES + MODEL_FILES


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny"))


def build(source: str, tok, extra: dict):
    sc = ov_genai.SchedulerConfig()
    sc.num_kv_blocks = 16
    return ov_genai.ContinuousBatchingPipeline(source, tok, sc, "CPU", **F32, **extra)


def greedy(pipe, tok, n: int = 6) -> list[int]:
    c = ov_genai.GenerationConfig()
    c.max_new_tokens, c.min_new_tokens, c.do_sample = n, n, False
    prompt = tok.apply_chat_template([{"role": "user", "content": "hi"}], add_generation_prompt=True)
    ids = tok.encode(prompt, add_special_tokens=False).input_ids
    return list(pipe.generate([ids], [c])[0].m_generation_ids[0])


def stamps(folder: Path) -> dict[str, int]:
    return {f: (folder / f).stat().st_mtime_ns for f in FILES}


def test_written_once_then_read_and_equal_to_the_gguf(tiny, tmp_path):
    tok, pipe, folder, cached = load_converted(ov_genai, tiny, tmp_path, build)
    assert not cached and folder.parent == tmp_path / "converted"
    assert set(json.loads((folder / MANIFEST).read_text())["files"]) == set(FILES)
    before = stamps(folder)
    tok2, pipe2, same, cached2 = load_converted(ov_genai, tiny, tmp_path, build)
    assert cached2 and same == folder and stamps(folder) == before
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no temporary leftovers
    assert greedy(pipe2, tok2) == greedy(pipe, tok)  # the IR is the same model as the GGUF
    from_gguf = ov_genai.Tokenizer(str(tiny))
    messages = [{"role": "user", "content": "héllo ✓ <tool_call>"}]
    prompt = from_gguf.apply_chat_template(messages, add_generation_prompt=True)
    assert tok2.apply_chat_template(messages, add_generation_prompt=True) == prompt
    ids = from_gguf.encode(prompt, add_special_tokens=False).input_ids.data[0].tolist()
    assert tok2.encode(prompt, add_special_tokens=False).input_ids.data[0].tolist() == ids
    assert tok2.decode(ids) == from_gguf.decode(ids)


@pytest.mark.parametrize("damage", ["truncated-bin", "no-manifest", "bad-manifest", "missing-xml", "garbage-xml"])
def test_a_partial_or_damaged_cache_is_converted_again(tiny, tmp_path, damage):
    _, _, folder, _ = load_converted(ov_genai, tiny, tmp_path, build)
    if damage == "truncated-bin":
        with open(folder / "openvino_model.bin", "r+b") as f:
            f.truncate(10)
    elif damage == "no-manifest":
        (folder / MANIFEST).unlink()
    elif damage == "bad-manifest":
        (folder / MANIFEST).write_text("{")
    elif damage == "missing-xml":
        (folder / "openvino_tokenizer.xml").unlink()
    else:  # same size, unreadable: only loading it can tell
        xml = folder / "openvino_model.xml"
        xml.write_bytes(b"x" * xml.stat().st_size)
    tok, pipe, again, cached = load_converted(ov_genai, tiny, tmp_path, build)
    assert not cached and again == folder
    assert load_converted(ov_genai, tiny, tmp_path, build)[3]  # rebuilt complete: read next time
    assert len(greedy(pipe, tok)) == 6


def test_a_load_from_the_cache_that_died_is_not_trusted(tiny, tmp_path):
    _, _, folder, _ = load_converted(ov_genai, tiny, tmp_path, build)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True)
    (folder / f".loading-{int(dead.stdout)}").touch()  # what a native crash mid-load leaves behind
    (folder.parent / f".converting-{int(dead.stdout)}-abc").mkdir()  # and one mid-conversion
    assert not load_converted(ov_genai, tiny, tmp_path, build)[3]
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]
    (folder / f".loading-{os.getppid()}").touch()  # a live process loading it right now: trusted
    assert load_converted(ov_genai, tiny, tmp_path, build)[3]


def test_another_openvino_or_model_file_converts_again(tiny, tmp_path, monkeypatch):
    _, _, first, _ = load_converted(ov_genai, tiny, tmp_path, build)
    real = converted.versions()
    monkeypatch.setattr(converted, "versions", lambda: {**real, "openvino": real["openvino"] + "-next"})
    _, _, other, cached = load_converted(ov_genai, tiny, tmp_path, build)
    assert other != first and not cached
    assert not first.exists()  # the older conversion of the same file is gone
    monkeypatch.undo()
    os.utime(tiny, ns=(tiny.stat().st_atime_ns, tiny.stat().st_mtime_ns + 10**9))  # a new package version
    newest = load_converted(ov_genai, tiny, tmp_path, build)[2]
    assert newest not in (first, other) and [p.name for p in newest.parent.iterdir()] == [newest.name]
