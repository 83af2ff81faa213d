"""The build's decisions that need no compiler: where the binary is cached, that a cached one is
used as is, what is missing, and the cmake flags (no -march=native, only the server)."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamacpp_server import build


def test_cache_folder_names_version_and_cpu_level(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACPP_SERVER_CACHE", str(tmp_path))
    tag, _ = build.isa_level()
    assert build.cache_dir() == tmp_path / f"llama-server-{build.LLAMA_CPP_PYTHON_VERSION}-{tag}"
    monkeypatch.delenv("LLAMACPP_SERVER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert build.cache_root() == tmp_path / "xdg" / "homelab-llm" / "llama-server"


def test_a_cached_binary_is_used_without_building(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACPP_SERVER_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", "")  # no pip, no cmake: building would fail
    binary = build.cache_dir() / "llama-server"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    assert build.ensure_llama_server(log=pytest.fail) == binary


def test_missing_tools_are_named_before_anything_is_downloaded(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLAMACPP_SERVER_CACHE", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(build.BuildError, match=r"^building llama-server needs cmake, c\+\+, cc \(Debian"):
        build.ensure_llama_server(log=pytest.fail)
    assert not (build.cache_dir() / "llama-server").exists()


def test_cmake_flags_are_portable_and_server_only(tmp_path: Path) -> None:
    tag, isa = build.isa_level()
    args = build.cmake_args(tmp_path / "src", tmp_path / "build", isa)
    assert "-DGGML_NATIVE=OFF" in args and "-DBUILD_SHARED_LIBS=OFF" in args
    assert "-DLLAMA_BUILD_UI=OFF" in args and "-DLLAMA_OPENSSL=OFF" in args
    if tag != "x86-64":
        assert "-DGGML_AVX2=ON" in args
