"""The built-in model is written locally, deterministically and idempotently."""

import hashlib
import subprocess
import sys

from ov_server.tiny_model import CHAT_TEMPLATE, FILE_NAME, build_tiny_model


def digest(p):
    return hashlib.sha256(p.read_bytes()).hexdigest()


def test_build_is_deterministic_and_idempotent(tmp_path):
    a = build_tiny_model(tmp_path / "a")
    b = build_tiny_model(tmp_path / "b" / "custom.gguf")
    assert a.name == FILE_NAME and b.name == "custom.gguf"
    assert digest(a) == digest(b)
    mtime = a.stat().st_mtime_ns
    assert build_tiny_model(tmp_path / "a") == a
    assert a.stat().st_mtime_ns == mtime  # identical file left alone
    assert 100_000 < a.stat().st_size < 1_000_000
    assert not [p for p in (tmp_path / "a").iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_cli_prints_path(tmp_path):
    out = subprocess.run([sys.executable, "-m", "ov_server.cli", "build-tiny-model", str(tmp_path)],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(tmp_path / FILE_NAME)


def test_cli_without_out_writes_where_serve_looks(tmp_path):
    """No OUT: OV_SERVER_MODEL_DIR from the environment, else from the env file, as `serve` reads it."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("OV_SERVER_")}
    env_file = tmp_path / "ov.env"
    env_file.write_text(f"OV_SERVER_MODEL_DIR={tmp_path / 'from-file'}\n")
    cmd = [sys.executable, "-m", "ov_server.cli", "build-tiny-model", "--env-file", str(env_file)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == str(tmp_path / "from-file" / FILE_NAME)
    env["OV_SERVER_MODEL_DIR"] = str(tmp_path / "from-env")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == str(tmp_path / "from-env" / FILE_NAME)
    assert (tmp_path / "from-env" / FILE_NAME).is_file()


def test_template_is_chatml_with_tools():
    assert "<|im_start|>" in CHAT_TEMPLATE and "<tool_call>" in CHAT_TEMPLATE


def test_no_telemetry_files_written(tmp_path):
    """Serving (the HTTP process and its engine processes) must not write under $HOME, CI=true or not."""
    import httpx
    from conftest import start_server, stop_server

    home = tmp_path / "home"
    home.mkdir()
    # The default models: jerry-chat's first load converts its GGUF, which must not write there either.
    s = start_server(tmp_path / "srv", environ={"HOME": str(home), "CI": None}, default_models=True)
    try:
        for model in ("jerry-tiny", "jerry-chat"):
            r = httpx.post(s.base + "/v1/chat/completions", timeout=60, json={
                "model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2})
            assert r.status_code == 200
    finally:
        stop_server(s)
    assert list(home.iterdir()) == []


def test_shape_parameter_keeps_default_and_scales(tmp_path):
    """The benchmark's larger model comes from the same builder; the default
    shape must still give exactly the built-in model."""
    import gguf
    import numpy as np

    from ov_server.tiny_model import DEFAULT_SHAPE, EOS_TOKEN, EOS_WEIGHT, Shape

    default = build_tiny_model(tmp_path / "a")
    assert digest(build_tiny_model(tmp_path / "b", DEFAULT_SHAPE)) == digest(default)
    big = build_tiny_model(tmp_path / "big.gguf", Shape(hidden=128, layers=3, ffn=256))
    readers = {p: gguf.GGUFReader(str(p)) for p in (default, big)}

    def field(r, key):
        return r.fields[key].parts[-1][0]

    assert field(readers[big], "llama.embedding_length") == 128 and field(readers[big], "llama.block_count") == 3
    toks = [r.fields["tokenizer.ggml.tokens"] for r in readers.values()]
    vocab = [[bytes(f.parts[i]).decode() for i in f.data] for f in toks]
    assert vocab[0] == vocab[1]
    eos = vocab[0].index(EOS_TOKEN)
    for r in readers.values():
        out = next(t for t in r.tensors if t.name == "output.weight")
        row = np.asarray(out.data)[eos]
        assert row[0] == EOS_WEIGHT and not row[1:].any()  # EOS hangs on the constant channel only
