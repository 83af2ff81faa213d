"""CPU features and the compile properties that avoid known crashes (pure, no OpenVINO)."""

from __future__ import annotations

import os

import pytest

from ov_server.cpu import CpuInfo, detect, parse_isa_cap, safe_properties, usable_cpus

AVX2 = frozenset({"avx", "avx2", "fma"})
AVX512 = AVX2 | {"avx512f", "avx512bw", "avx512vl", "avx512dq", "avx512_vnni"}
BF16 = AVX512 | {"avx512_bf16"}  # e.g. AMD Zen 4/5
AMX = BF16 | {"amx_tile", "amx_bf16", "amx_int8"}  # e.g. Xeon 4th generation and later


@pytest.mark.parametrize("flags, isa", [(frozenset(), "SSE41"), (AVX2, "AVX2"), (AVX512, "AVX512_CORE_VNNI"),
                                        (BF16, "AVX512_CORE_BF16"), (AMX, "AVX512_CORE_AMX"),
                                        (AMX | {"amx_fp16", "avx512_fp16"}, "AVX512_CORE_AMX_FP16")])
def test_max_isa_from_flags(flags, isa):
    assert CpuInfo(flags).max_isa == isa == CpuInfo(flags).effective_isa


def test_cap_lowers_the_effective_isa_never_raises_it():
    assert CpuInfo(AMX, "AVX512_CORE_BF16").effective_isa == "AVX512_CORE_BF16"
    assert CpuInfo(AMX, "AVX2").effective_isa == "AVX2"
    assert CpuInfo(AVX2, "AVX512_CORE_AMX").effective_isa == "AVX2"
    assert CpuInfo(BF16).supports_isa("AVX512_CORE_BF16") and not CpuInfo(BF16).supports_isa("AVX512_CORE_AMX")


def test_cap_parsing():
    assert parse_isa_cap(None) == (None, None)
    assert parse_isa_cap("avx2") == ("AVX2", None)
    assert parse_isa_cap("ALL") == (None, None)
    cap, err = parse_isa_cap("AVX9000")
    assert cap is None and "AVX9000" in err


def test_detect_reads_flags_and_the_cap(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu avx avx2 avx512f avx512bw avx512vl avx512dq avx512_bf16\n"
                    "processor\t: 1\nflags\t\t: fpu avx avx2 avx512f avx512bw avx512vl avx512dq avx512_bf16\n")
    cpu = detect({"ONEDNN_MAX_CPU_ISA": "AVX2"}, info)
    assert cpu.report() == {"flags": ["avx2", "avx512f", "avx512_bf16"], "max_isa": "AVX512_CORE_BF16",
                            "onednn_max_cpu_isa": "AVX2", "effective_isa": "AVX2"}
    assert detect({}, tmp_path / "missing").flags == frozenset()


ONE = {"INFERENCE_NUM_THREADS": 1}


def test_amx_with_one_thread_at_the_default_bf16_gets_f32():
    safe = safe_properties(ONE, "CPU", CpuInfo(AMX), "bf16")
    assert safe.properties == {**ONE, "INFERENCE_PRECISION_HINT": "f32"} and safe.precision == "f32"
    assert "SIGFPE" in safe.notes[0]
    # capped below AMX (what AMD Zen 4/5 run anyway): bf16 with one thread works
    assert safe_properties(ONE, "CPU", CpuInfo(AMX, "AVX512_CORE_BF16"), "bf16").precision == "bf16"
    assert safe_properties({"INFERENCE_NUM_THREADS": 2}, "CPU", CpuInfo(AMX), "bf16").precision == "bf16"
    assert safe_properties(ONE, "CPU", CpuInfo(BF16), "bf16").properties == ONE


@pytest.mark.parametrize("cap", ["AVX2", "AVX512_CORE", "AVX512_CORE_VNNI"])
def test_bf16_default_with_the_kernels_capped_below_bf16_gets_f32(cap):
    for flags in (BF16, AMX):
        safe = safe_properties({}, "CPU", CpuInfo(flags, cap), "bf16")
        assert safe.properties == {"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0}, (flags, cap)
        assert all(cap in note for note in safe.notes) and "f32" in safe.notes[-1]


def test_capped_kernels_get_dynamic_quantization_off_even_at_an_explicit_precision():
    """jerry-chat (Q4_1 weights) at f32 under ONEDNN_MAX_CPU_ISA=AVX2 on an AVX-512 CPU failed every
    step (make_tensor.cpp) until dynamic quantization was off."""
    f32 = {**ONE, "INFERENCE_PRECISION_HINT": "f32"}
    safe = safe_properties(f32, "CPU", CpuInfo(BF16, "AVX2"), "bf16")
    assert safe.properties == {**f32, "DYNAMIC_QUANTIZATION_GROUP_SIZE": 0} and safe.precision == "f32"
    assert "AVX2" in safe.notes[0]
    assert safe_properties(f32, "CPU", CpuInfo(BF16), "bf16").properties == f32  # uncapped: left alone
    assert safe_properties(f32, "CPU", CpuInfo(BF16, "AVX512_CORE_BF16"), "bf16").properties == f32  # cap = max
    mine = {**f32, "DYNAMIC_QUANTIZATION_GROUP_SIZE": 64}
    assert safe_properties(mine, "CPU", CpuInfo(BF16, "AVX2"), "bf16").properties == mine  # the operator's choice


def test_explicit_choices_and_other_devices_are_left_alone():
    explicit = {**ONE, "INFERENCE_PRECISION_HINT": "bf16"}
    assert safe_properties(explicit, "CPU", CpuInfo(AMX), "bf16").properties == explicit
    assert safe_properties(ONE, "GPU", CpuInfo(AMX, "AVX2"), "bf16").properties == ONE
    assert safe_properties(ONE, "CPU", CpuInfo(AVX2), "f32").properties == ONE  # f32 by default: nothing to fix


def test_usable_cpus_is_the_affinity_mask_bounded_by_a_cgroup_quota(tmp_path):
    mask = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "none") == mask  # no cgroup files: the mask
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path) == mask  # v2, no quota
    (tmp_path / "cpu.max").write_text("50000 100000\n")
    assert usable_cpus(tmp_path) == 1  # half a CPU still gets one thread
    (tmp_path / "cpu.max").write_text(f"{150000 * mask} 100000\n")
    assert usable_cpus(tmp_path) == mask  # a quota above the mask does not raise it
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cpus(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")  # v1's "no quota"
    assert usable_cpus(v1) == mask


def test_jerry_chat_takes_a_thread_per_usable_cpu_up_to_the_cap_and_jerry_tiny_one():
    from ov_server.registry import CHAT_MAX_THREADS, builtin_spec

    chat = builtin_spec("jerry-chat").properties
    assert chat["INFERENCE_NUM_THREADS"] == min(usable_cpus(), CHAT_MAX_THREADS)
    assert chat["INFERENCE_PRECISION_HINT"] == "f32" and chat["ENABLE_CPU_PINNING"] is False
    assert builtin_spec("jerry-tiny").properties["INFERENCE_NUM_THREADS"] == 1


def test_the_quota_of_the_processs_own_cgroup_or_an_ancestor_counts(tmp_path):
    """A systemd unit's `CPUQuota=` (or its slice's) sits below the cgroup root, where this process's
    /proc/self/cgroup points, not on the root."""
    mask = len(os.sched_getaffinity(0))
    proc = tmp_path / "proc-cgroup"
    proc.write_text("0::/system.slice/ov-server.service\n")
    unit = tmp_path / "system.slice" / "ov-server.service"
    unit.mkdir(parents=True)
    (unit / "cpu.max").write_text("max 100000\n")
    assert usable_cpus(tmp_path, proc) == mask  # no quota anywhere
    (unit / "cpu.max").write_text("100000 100000\n")
    assert usable_cpus(tmp_path, proc) == 1  # the unit's own
    (unit / "cpu.max").write_text("max 100000\n")
    (unit.parent / "cpu.max").write_text("100000 100000\n")
    assert usable_cpus(tmp_path, proc) == 1  # its slice's
    v1 = tmp_path / "v1"
    unit1 = v1 / "cpu" / "docker" / "abc"
    unit1.mkdir(parents=True)
    (unit1 / "cpu.cfs_quota_us").write_text("100000\n")
    (unit1 / "cpu.cfs_period_us").write_text("100000\n")
    proc.write_text("4:cpu,cpuacct:/docker/abc\n1:memory:/elsewhere\n0::/\n")
    assert usable_cpus(v1, proc) == 1
    proc.write_text("4:cpu,cpuacct:/\n0::/\n")
    assert usable_cpus(v1, proc) == mask  # the quota is on another cgroup than ours
