"""Build llama.cpp's `llama-server` for the bench, once, into a cache dir.

Run standalone to prebuild (slow: ~20-40 min on 2 shared cores):
    uv run python bench/llama_server_build.py
The bench calls `ensure_llama_server()`, which returns the cached binary.

Source: the llama.cpp tree that the `llama-cpp-python` sdist vendors (PyPI is
the only registry the project downloads from; no git clone, no model hub).
Only the `llama-server` target is built, at `nice -n 19`, `-j2`.

ISA flags: `GGML_NATIVE=OFF`, so the binary carries no `-march=native` and runs
on any x86-64 CPU at the chosen level; the level is picked from /proc/cpuinfo
(x86-64-v3 = AVX2/FMA/F16C/BMI2, plus AVX-512/VNNI/VBMI/BF16 when present) and
is part of the cache dir's name. That is what llama.cpp's own release build
does at run time (GGML_CPU_ALL_VARIANTS loads the best of ~14 CPU variants)
without compiling 14 variants on 2 cores, so the peer runs the same ISA
OpenVINO's CPU plugin dispatches to on this host: a fair comparison.
Also off: the web UI (its prebuilt assets come from a model hub bucket),
OpenSSL/HTTPS, tests, examples, other tools; static libs, so the one binary
is self-contained in the cache dir.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

LLAMA_CPP_PYTHON_VERSION = "0.3.36"
CACHE_ROOT = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "homelab-llm" / "bench"


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
    return CACHE_ROOT / f"llama-server-{version}-{isa_level()[0]}"


def _download_sdist(version: str, dest: Path) -> Path:
    pip = [sys.executable, "-m", "pip"]
    if subprocess.run([*pip, "--version"], check=False, capture_output=True).returncode != 0:
        pip = [shutil.which("pip3") or shutil.which("pip") or "pip"]
    subprocess.run(
        [*pip, "download", "--no-deps", "--no-binary", "llama-cpp-python", f"llama-cpp-python=={version}", "-d", str(dest)],
        check=True,
    )
    return next(dest.glob("llama_cpp_python-*.tar.gz"))


def ensure_llama_server(version: str = LLAMA_CPP_PYTHON_VERSION, log=print) -> Path:
    """Path of a built llama-server; builds it (slow) when the cache lacks it."""
    out = cache_dir(version)
    binary = out / "llama-server"
    if binary.exists():
        return binary
    out.mkdir(parents=True, exist_ok=True)
    tag, isa_flags = isa_level()
    log(f"building llama-server from llama-cpp-python=={version} ({tag}) into {out}; this takes a while")
    with tempfile.TemporaryDirectory(prefix="llama-build-") as tmp:
        work = Path(tmp)
        sdist = _download_sdist(version, work)
        with tarfile.open(sdist) as tar:
            tar.extractall(work, filter="data")
        src = next(work.glob("llama_cpp_python-*/vendor/llama.cpp"))
        build = work / "build"
        cmake = [
            "cmake", "-S", str(src), "-B", str(build), "-DCMAKE_BUILD_TYPE=Release",
            "-DBUILD_SHARED_LIBS=OFF", "-DGGML_NATIVE=OFF", *isa_flags,
            "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF", "-DLLAMA_BUILD_SERVER=ON",
            "-DLLAMA_BUILD_UI=OFF", "-DLLAMA_USE_PREBUILT_UI=OFF", "-DLLAMA_OPENSSL=OFF",
            "-DLLAMA_BUILD_APP=OFF",
        ]
        if shutil.which("ninja"):
            cmake += ["-G", "Ninja"]
        subprocess.run(["nice", "-n", "19", *cmake], check=True)
        subprocess.run(
            ["nice", "-n", "19", "cmake", "--build", str(build), "--target", "llama-server", "-j2"], check=True
        )
        built = next(p for p in build.rglob("llama-server") if p.is_file() and os.access(p, os.X_OK))
        shutil.copy2(built, binary)
    (out / "BUILD_INFO").write_text(f"llama-cpp-python=={version}\nisa={tag}\ncmake flags: {' '.join(isa_flags)}\n")
    return binary


if __name__ == "__main__":
    print(ensure_llama_server())
