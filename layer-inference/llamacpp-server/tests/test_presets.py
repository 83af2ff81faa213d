"""The router's presets INI (pure, no binary): what `serve` writes and keeps, what router mode's
argv is, and bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from llamacpp_server import presets, settings


def test_a_missing_file_is_written_with_the_builtin_section(tmp_path: Path) -> None:
    path = tmp_path / "p.ini"
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    presets.ensure_builtin(path, "jerry-chat-lcpp", model)
    text = path.read_text()
    assert text.startswith("; ") and "version = 1" in text  # llama.cpp's format version
    assert presets.read(path) == {"jerry-chat-lcpp": {"model": str(model.resolve()), "load-on-startup": "true"}}


def test_added_sections_are_kept_and_the_builtin_follows_the_model_setting(tmp_path: Path) -> None:
    path = tmp_path / "p.ini"
    old, new, added = (tmp_path / n for n in ("old.gguf", "new.gguf", "added.gguf"))
    path.write_text(f"version = 1\n[*]\nc = 4096\n\n; a comment\n[jerry-added]\nmodel = {added}\n"
                    f"[jerry-chat-lcpp]\nmodel = {old}\n")
    presets.ensure_builtin(path, "jerry-chat-lcpp", new)
    got = presets.read(path)
    assert list(got) == ["jerry-chat-lcpp", "*", "jerry-added"]
    assert got["jerry-chat-lcpp"]["model"] == str(new.resolve())
    assert got["*"] == {"c": "4096"} and got["jerry-added"] == {"model": str(added)}


def test_an_unchanged_file_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "p.ini"
    presets.ensure_builtin(path, "jerry-chat-lcpp", tmp_path / "m.gguf")
    stamp = path.stat().st_mtime_ns
    inode = path.stat().st_ino
    presets.ensure_builtin(path, "jerry-chat-lcpp", tmp_path / "m.gguf")
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == (stamp, inode)


def test_a_broken_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.ini"
    path.write_text("version = 1\n[jerry-x]\nmodel /x.gguf\n")
    with pytest.raises(presets.PresetsError, match=r"p\.ini:3: expected `key = value`"):
        presets.read(path)


def test_router_mode_argv_has_the_presets_and_no_model_of_its_own(tmp_path: Path) -> None:
    conf = settings.load({"LLAMACPP_SERVER_PRESETS": str(tmp_path / "p.ini"), "LLAMACPP_SERVER_THREADS": "2"})
    argv = settings.command(tmp_path / "llama-server", conf, "127.0.0.1", 4011)
    assert argv[argv.index("--models-preset") + 1] == str(tmp_path / "p.ini")
    assert "--model" not in argv and "--alias" not in argv
    assert argv[argv.index("--threads") + 1] == "2" and "--chat-template" in argv  # apply to every model


def test_a_presets_file_in_a_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(settings.SettingsError, match="LLAMACPP_SERVER_PRESETS=.*does not exist"):
        settings.load({"LLAMACPP_SERVER_PRESETS": str(tmp_path / "nope" / "p.ini")})
