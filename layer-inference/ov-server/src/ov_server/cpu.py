"""CPU features that decide which OpenVINO CPU kernels run, and compile properties that avoid the
combinations known to crash (pure: flags, env and properties in, decisions out).

Why: OpenVINO's CPU plugin picks bf16 as the default inference precision on any CPU with bf16
instructions (avx512_bf16 or AMX), reading CPUID itself. Two failures follow (FIELD_NOTES, and
reproduced here under ONEDNN_MAX_CPU_ISA):
- AMX + the default bf16 + INFERENCE_NUM_THREADS 1 divides by zero inside the plugin (SIGFPE) for
  the built-in model's shapes;
- ONEDNN_MAX_CPU_ISA capped below AVX512_CORE_BF16 on a bf16 CPU: the plugin still selects bf16,
  the kernels cannot run it, and every step fails (`make_tensor.cpp`, `m_ptr != nullptr`);
- the same cap on a model with compressed weights (jerry-chat's Q4_1), even at an explicit f32:
  the plugin's dynamic quantization of activations fails every step the same way. Capped kernels
  (any cap below what the CPU has) therefore get DYNAMIC_QUANTIZATION_GROUP_SIZE 0 by default.
An explicit property is always respected (the operator chose it); only defaults are changed, and
every change is logged and shown on /health.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# oneDNN's ISA names (values of ONEDNN_MAX_CPU_ISA), lowest first. A cap selects the highest
# kernel family at or below it that the CPU also has.
ISA_ORDER = [
    "SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE", "AVX512_CORE_VNNI",
    "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX", "AVX512_CORE_AMX_FP16",
]
ISA_ALIASES = {"ALL": None, "DEFAULT": None, "": None}
# Flags worth reporting: what the precision and kernel choice depend on.
REPORTED_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8", "amx_fp16")
BF16_ISA = "AVX512_CORE_BF16"
DYNAMIC_QUANT = "DYNAMIC_QUANTIZATION_GROUP_SIZE"
AMX_ISA = "AVX512_CORE_AMX"


@dataclass(frozen=True)
class CpuInfo:
    flags: frozenset[str]
    isa_cap: str | None = None  # ONEDNN_MAX_CPU_ISA as given (normalised), None when unset
    cap_error: str | None = None  # an unknown cap value (oneDNN ignores it)

    @property
    def max_isa(self) -> str:
        """The highest oneDNN kernel family this CPU supports."""
        f = self.flags
        avx512_core = {"avx512f", "avx512bw", "avx512vl", "avx512dq"} <= f
        if avx512_core and "avx512_bf16" in f and {"amx_tile", "amx_bf16"} <= f:
            return "AVX512_CORE_AMX_FP16" if "amx_fp16" in f else "AVX512_CORE_AMX"
        if avx512_core and "avx512_fp16" in f and "avx512_bf16" in f:
            return "AVX512_CORE_FP16"
        if avx512_core and "avx512_bf16" in f:
            return "AVX512_CORE_BF16"
        if avx512_core and "avx512_vnni" in f:
            return "AVX512_CORE_VNNI"
        if avx512_core:
            return "AVX512_CORE"
        if "avx2" in f:
            return "AVX2_VNNI" if "avx_vnni" in f else "AVX2"
        return "AVX" if "avx" in f else "SSE41"

    @property
    def effective_isa(self) -> str:
        """The kernel family oneDNN actually uses: the CPU's best, capped by ONEDNN_MAX_CPU_ISA."""
        best = self.max_isa
        if self.isa_cap is None:
            return best
        return ISA_ORDER[min(ISA_ORDER.index(best), ISA_ORDER.index(self.isa_cap))]

    def isa_at_least(self, isa: str) -> bool:
        return ISA_ORDER.index(self.effective_isa) >= ISA_ORDER.index(isa)

    def supports_isa(self, isa: str) -> bool:
        """Can this CPU run the kernel family `isa` (so that capping at it selects it)?"""
        return ISA_ORDER.index(self.max_isa) >= ISA_ORDER.index(isa)

    def report(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "flags": [f for f in REPORTED_FLAGS if f in self.flags],
            "max_isa": self.max_isa,
            "onednn_max_cpu_isa": self.isa_cap,
            "effective_isa": self.effective_isa,
        }
        if self.cap_error:
            out["onednn_max_cpu_isa_error"] = self.cap_error
        return out


def read_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> frozenset[str]:
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "flags":
                return frozenset(value.split())
    except OSError:
        pass
    return frozenset()


def inference_threads(properties: Mapping[str, object]) -> int | None:
    """`INFERENCE_NUM_THREADS` as an int, None when unset or not a number (OpenVINO then decides)."""
    value = properties.get("INFERENCE_NUM_THREADS")
    try:
        return int(value)  # type: ignore[call-overload]  # "1" from YAML strings too
    except (TypeError, ValueError):
        return None


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")) -> int:
    """CPUs this process may really use: its affinity mask, bounded by the tightest CPU quota of its
    cgroup or an ancestor (a container limited to 2 CPUs on a 64-core host sees 64 in the mask, as
    does a systemd unit with `CPUQuota=`; OpenVINO's default of one thread per core would then
    contend for 2)."""
    n = len(os.sched_getaffinity(0))
    quota = _cgroup_quota(cgroup, proc_cgroup)
    if quota is not None:
        n = min(n, max(1, math.ceil(quota)))
    return max(1, n)


def _own_cgroups(proc_cgroup: Path) -> tuple[str, str]:
    """(cgroup v2 path, v1 `cpu` controller path) of this process; "/" where unknown (in a
    container's cgroup namespace both are "/": its limit is on the root)."""
    v2 = v1 = "/"
    try:
        for line in proc_cgroup.read_text().splitlines():
            hierarchy, controllers, path = line.split(":", 2)
            if hierarchy == "0" and not controllers:
                v2 = path
            elif "cpu" in controllers.split(","):
                v1 = path
    except (OSError, ValueError):
        pass
    return v2, v1


def _up_to(root: Path, own: str) -> Iterator[Path]:
    """`own`'s folder under `root`, then each parent up to `root` itself."""
    folder = root / own.strip("/")
    yield folder
    while folder != root:
        folder = folder.parent
        yield folder


def _cgroup_quota(cgroup: Path, proc_cgroup: Path) -> float | None:
    """The tightest CPU quota, in CPUs, on this process's cgroup or its ancestors (v2 `cpu.max`,
    v1 CFS quota); None without one."""
    v2, v1 = _own_cgroups(proc_cgroup)
    quotas = []
    for folder in _up_to(cgroup, v2):  # "max 100000" or "200000 100000"
        try:
            q, period = (folder / "cpu.max").read_text().split()[:2]
            if q != "max":
                quotas.append(int(q) / int(period))
        except (OSError, ValueError):
            pass
    for folder in _up_to(cgroup / "cpu", v1):
        try:
            quota_us = int((folder / "cpu.cfs_quota_us").read_text())
            if quota_us > 0:  # -1: no quota
                quotas.append(quota_us / int((folder / "cpu.cfs_period_us").read_text()))
        except (OSError, ValueError):
            pass
    return min(quotas, default=None)


def parse_isa_cap(value: str | None) -> tuple[str | None, str | None]:
    """(cap, error) from ONEDNN_MAX_CPU_ISA; an unknown value is reported, not guessed at."""
    if value is None:
        return None, None
    v = value.strip().upper()
    if v in ISA_ALIASES:
        return None, None
    if v not in ISA_ORDER:
        return None, f"unknown ONEDNN_MAX_CPU_ISA value {value!r}"
    return v, None


def detect(env: dict[str, str] | None = None, cpuinfo: Path = Path("/proc/cpuinfo")) -> CpuInfo:
    env = os.environ if env is None else env
    cap, err = parse_isa_cap(env.get("ONEDNN_MAX_CPU_ISA"))
    return CpuInfo(read_flags(cpuinfo), cap, err)


@dataclass(frozen=True)
class SafeProperties:
    properties: dict[str, Any]
    precision: str  # the inference precision that will be used
    notes: list[str] = field(default_factory=list)  # why a default was changed


def _norm_precision(value: Any) -> str:
    text = str(value).lower()
    return {"bfloat16": "bf16", "float32": "f32", "float16": "f16"}.get(text, text)


def safe_properties(properties: dict[str, Any], device: str, cpu: CpuInfo, default_precision: str
                    ) -> SafeProperties:
    """Compile properties with a safe inference precision (and dynamic quantization) for `cpu`.

    `default_precision` is what the plugin would pick with no hint (ov.Core().get_property(
    "CPU", "INFERENCE_PRECISION_HINT")). Non-CPU devices and explicit properties are left alone.
    """
    props = dict(properties)
    default = _norm_precision(default_precision)
    if not device.upper().startswith("CPU"):
        return SafeProperties(props, _norm_precision(props.get("INFERENCE_PRECISION_HINT", "device default")))
    notes: list[str] = []
    if cpu.effective_isa != cpu.max_isa and DYNAMIC_QUANT not in props:
        props[DYNAMIC_QUANT] = 0
        notes.append(f"dynamic quantization off: kernels capped at {cpu.effective_isa} below the CPU's "
                     f"{cpu.max_isa}, where it fails every step for compressed weights")
    if "INFERENCE_PRECISION_HINT" in props:
        return SafeProperties(props, _norm_precision(props["INFERENCE_PRECISION_HINT"]), notes)
    first = len(notes)
    if default == "bf16" and not cpu.isa_at_least(BF16_ISA):
        notes.append(f"bf16 kernels are capped off (effective ISA {cpu.effective_isa}): "
                     "the default bf16 precision fails there")
    if default == "bf16" and cpu.isa_at_least(AMX_ISA) and inference_threads(props) == 1:
        notes.append("AMX with bf16 and one inference thread divides by zero in the CPU plugin (SIGFPE)")
    if len(notes) > first:
        props["INFERENCE_PRECISION_HINT"] = "f32"
        notes[first:] = [f"inference precision f32 instead of the default {default}: {n}" for n in notes[first:]]
        return SafeProperties(props, "f32", notes)
    return SafeProperties(props, default, notes)
