"""Build llama.cpp's `llama-server` once per machine and CPU level, into a cache folder.

The one build of the project: `llamacpp-server prepare` (run by `homelab up --with
llamacpp-server` and the systemd unit's ExecStartPre) and ov-server's comparison bench
(`bench/bench_vs_llama_server.py`) both call `ensure_llama_server()`. Standard library only, so
the bench can import this file from ov-server's environment.

Source: the llama.cpp tree that the `llama-cpp-python` sdist vendors (PyPI is the only registry
the project downloads from; no git clone, no model hub). Only the `llama-server` target is built,
at `nice -n 19`, `-j<cores>`.

ISA flags: `GGML_NATIVE=OFF`, so the binary carries no `-march=native` and runs on any x86-64 CPU
at the chosen level; the level is picked from /proc/cpuinfo (x86-64-v3 = AVX2/FMA/F16C/BMI2, plus
AVX-512/VNNI/VBMI/BF16 when present) and is part of the cache folder's name. That is what
llama.cpp's own release build does at run time (GGML_CPU_ALL_VARIANTS loads the best of ~14 CPU
variants) without compiling 14 variants on 2 cores. Also off: the web UI (its prebuilt assets
come from a model hub bucket), OpenSSL/HTTPS, tests, examples, other tools; static libs, so the
one binary is self-contained in the cache folder.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
# Measured here (2 shared cores, x86-64-v3, load ~3): what `prepare` tells people to expect.
MEASURED_MINUTES = 31
MEASURED_BUILD = f"about {MEASURED_MINUTES} minutes on 2 busy cores"
TOOLS = ("cmake", "c++", "cc")

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """The build cannot run or failed; the message says what to install or read."""


def cache_root() -> Path:
    """LLAMACPP_SERVER_CACHE, else ~/.cache/homelab-llm/llama-server (XDG_CACHE_HOME honoured)."""
    if explicit := os.environ.get("LLAMACPP_SERVER_CACHE", "").strip():
        return Path(explicit).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "homelab-llm" / "llama-server"


def isa_level() -> tuple[str, list[str]]:
    """(tag, cmake flags) for the highest ISA level this CPU has, of three."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        flags = set()
    v3 = {"avx", "avx2", "fma", "f16c", "bmi2"}
    v4 = {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512cd"}
    if not v3 <= flags:
        return "x86-64", ["-DGGML_AVX=OFF", "-DGGML_AVX2=OFF", "-DGGML_FMA=OFF", "-DGGML_F16C=OFF", "-DGGML_BMI2=OFF"]
    cmake = ["-DGGML_AVX=ON", "-DGGML_AVX2=ON", "-DGGML_FMA=ON", "-DGGML_F16C=ON", "-DGGML_BMI2=ON"]
    if not v4 <= flags:
        return "x86-64-v3", cmake
    cmake.append("-DGGML_AVX512=ON")
    tag = "x86-64-v4"
    for flag, opt in (("avx512_vnni", "AVX512_VNNI"), ("avx512vbmi", "AVX512_VBMI"), ("avx512_bf16", "AVX512_BF16")):
        if flag in flags:
            cmake.append(f"-DGGML_{opt}=ON")
            tag += "-" + opt.removeprefix("AVX512_").lower()
    return tag, cmake


def cache_dir(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path:
    return cache_root() / f"llama-server-{version}-{isa_level()[0]}"


def cached_binary(version: str = LLAMA_CPP_PYTHON_VERSION) -> Path | None:
    """The built binary if this machine has it (never builds)."""
    binary = cache_dir(version) / "llama-server"
    return binary if binary.is_file() and os.access(binary, os.X_OK) else None


def missing_tools() -> list[str]:
    return [tool for tool in TOOLS if shutil.which(tool) is None]


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """One build at a time per cache folder: a second caller waits, then finds the binary."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def _pip() -> list[str]:
    pip = [sys.executable, "-m", "pip"]
    if subprocess.run([*pip, "--version"], check=False, capture_output=True).returncode == 0:
        return pip
    found = shutil.which("pip3") or shutil.which("pip")
    if found:
        return [found]
    uv = shutil.which("uv")
    if uv:  # uv's pip has no `download`; a throwaway venv with pip does
        return [uv, "tool", "run", "--from", "pip==25.3", "pip"]
    raise BuildError("no pip to download the llama-cpp-python sdist with (install pip or uv)")


def _download_sdist(version: str, dest: Path, log: Log) -> Path:
    # --no-binary only for llama-cpp-python: its build backend (scikit-build-core) may come as a
    # wheel; `:all:` made pip build hatchling & co. from source just to read metadata.
    cmd = [*_pip(), "download", "--no-deps", "--no-binary", "llama-cpp-python",
           f"llama-cpp-python=={version}", "-d", str(dest)]
    code, tail = _stream(cmd, log)
    if code != 0:
        raise BuildError(f"pip download llama-cpp-python=={version} failed (exit {code}):\n" + "\n".join(tail))
    return next(dest.glob("llama_cpp_python-*.tar.gz"))


def _stream(cmd: list[str], log: Log) -> tuple[int, list[str]]:
    """Run a command, passing each output line to `log`; (exit code, last lines)."""
    tail: list[str] = []
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            text=True, errors="replace")
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip()
        if line:
            tail = (tail + [line])[-20:]
            log(line)
    return proc.wait(), tail


_NINJA_STEP = re.compile(r"^\[(\d+)/(\d+)\]")


def cmake_args(src: Path, build: Path, isa_flags: list[str]) -> list[str]:
    args = [
        "cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
        "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", *isa_flags,
        "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
        "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
        "-DLLAMA_BUILD_APP=OFF",
    ]
    if shutil.which("ninja"):
        args += ["-G", "Ninja"]
    return args


def ensure_llama_server(version: str = LLAMA_CPP_PYTHON_VERSION, log: Log = print) -> Path:
    """Path of the built llama-server; builds it (slow, see MEASURED_BUILD) when the cache lacks it.

    The binary lands atomically (copied beside, then renamed), so a killed build leaves no
    half-written binary that the next start would run.
    """
    out = cache_dir(version)
    if found := cached_binary(version):
        return found
    with _locked(out):
        if found := cached_binary(version):  # built by another caller while we waited
            return found
        if missing := missing_tools():
            raise BuildError(f"building llama-server needs {', '.join(missing)} (Debian: apt-get install "
                             "cmake g++ ninja-build)")
        tag, isa_flags = isa_level()
        log(f"building llama-server from llama-cpp-python=={version} ({tag}) into {out}: "
            f"once per machine, {MEASURED_BUILD}")
        start = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
            work = Path(tmp)
            sdist = _download_sdist(version, work, log)
            with tarfile.open(sdist) as tar:
                tar.extractall(work, filter="data")
            src = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
            build = work / "build"
            code, tail = _stream(["nice", "-n", "19", *cmake_args(src, build, isa_flags)], log)
            if code != 0:
                raise BuildError(f"cmake configure failed (exit {code}):\n" + "\n".join(tail))
            jobs = str(os.cpu_count() or 2)
            last_pct = -1

            def progress(line: str) -> None:
                nonlocal last_pct
                if m := _NINJA_STEP.match(line):
                    pct = int(m.group(1)) * 100 // int(m.group(2))
                    if pct != last_pct:
                        last_pct = pct
                        minutes = (time.monotonic() - start) / 60
                        log(f"llama-server build {pct}%, {minutes:.0f} min (of about {MEASURED_MINUTES} "
                            f"on 2 busy cores): {line}")
                else:
                    log(line)

            code, tail = _stream(["nice", "-n", "19", "cmake", "--build", str(build), "--target", "llama-server",
                                  "-j", jobs], progress)
            if code != 0:
                raise BuildError(f"building llama-server failed (exit {code}):\n" + "\n".join(tail))
            built = next(p for p in build.rglob("llama-server") if p.is_file() and os.access(p, os.X_OK))
            partial = out / "llama-server.partial"
            shutil.copy2(built, partial)
            os.replace(partial, out / "llama-server")
        minutes = (time.monotonic() - start) / 60
        (out / "BUILD_INFO").write_text(f"llama-cpp-python=={version}\nisa={tag}\ncmake flags: {' '.join(isa_flags)}\n"
                                        f"build minutes: {minutes:.1f}\n")
        log(f"built llama-server in {minutes:.1f} min: {out / 'llama-server'}")
        return out / "llama-server"


if __name__ == "__main__":
    print(ensure_llama_server())
