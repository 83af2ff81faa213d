"""CPU placement of engine processes: the pure choice (placement.py), the registry field, and a real
server whose engine threads run where /health says."""

import os

import pytest
from conftest import start_server, stop_server, wait_until

from ov_server.config import ConfigError
from ov_server.cpu import inference_threads
from ov_server.placement import PlacementError, engine_cpus, format_cpus
from ov_server.registry import ModelSpec, builtin_spec, load_registry

ONE = builtin_spec("jerry-tiny")  # INFERENCE_NUM_THREADS 1
TWO = builtin_spec("jerry-tiny").model_copy(update={"properties": {"INFERENCE_NUM_THREADS": 2}})
UNSET = ModelSpec(path="/m.gguf")


def spec(base: ModelSpec = ONE, **kw) -> ModelSpec:
    return base.model_copy(update=kw)


def place(specs: dict[str, ModelSpec], usable=(0, 1)) -> dict[str, tuple[int, ...] | None]:
    return {mid: engine_cpus(mid, specs, usable) for mid in specs}


def test_auto_confines_one_thread_models_only():
    assert place({"tiny": ONE, "chat": TWO, "big": UNSET}) == {"tiny": (1,), "chat": None, "big": None}
    assert place({"tiny": spec(properties={"INFERENCE_NUM_THREADS": "1"})}) == {"tiny": (1,)}  # YAML string
    assert place({"tiny": ONE}, usable=(0,)) == {"tiny": None}  # one CPU: nothing to choose
    assert place({"tiny": spec(cpus="all")}) == {"tiny": None}


def test_auto_spreads_over_the_least_loaded_cpus_in_registry_order():
    four = (0, 1, 2, 3)
    assert place({"a": ONE, "b": ONE, "c": ONE}, usable=four) == {"a": (3,), "b": (2,), "c": (1,)}
    assert place({"a": ONE, "b": ONE, "c": ONE}) == {"a": (1,), "b": (0,), "c": (1,)}
    # An explicit list weighs on its CPUs; the auto model goes elsewhere.
    assert place({"pinned": spec(TWO, cpus=[2, 3]), "a": ONE}, usable=four)["a"] == (1,)
    assert place({"pinned": spec(TWO, cpus=[3]), "a": ONE}, usable=four)["a"] == (2,)


def test_listed_cpus_are_kept_to_the_usable_ones_and_none_is_an_error():
    assert place({"m": spec(cpus=[0, 5])}) == {"m": (0,)}
    with pytest.raises(PlacementError, match=r"models\.m\.cpus \[4, 5\]: none .* \(usable: 0-1\)"):
        engine_cpus("m", {"m": spec(cpus=[4, 5])}, (0, 1))
    # Another entry's bad list is that entry's error, not ours.
    assert engine_cpus("ok", {"bad": spec(cpus=[9]), "ok": ONE}, (0, 1)) == (1,)


def test_helpers():
    assert format_cpus([3, 0, 1, 2, 6, 8, 9]) == "0-3,6,8-9"
    assert format_cpus([1]) == "1"
    assert inference_threads({}) is None and inference_threads({"INFERENCE_NUM_THREADS": "x"}) is None
    assert inference_threads({"INFERENCE_NUM_THREADS": 1}) == 1


@pytest.mark.parametrize("value", ["[]", "[1, 1]", "[-1]", "some", "3", "[a]", "[true]"])
def test_registry_rejects_bad_cpus_naming_the_field(tmp_path, value):
    reg = tmp_path / "r.yaml"
    reg.write_text(f"models:\n  m:\n    builtin: jerry-tiny\n    cpus: {value}\n")
    with pytest.raises(ConfigError, match=r"r\.yaml: models\.m\.cpus: .*'auto', 'all' or a non-empty list"):
        load_registry(reg)


def thread_masks(pid: int) -> set[str]:
    """Cpus_allowed_list of every thread of `pid` (what the kernel enforces)."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            status = open(f"/proc/{pid}/task/{tid}/status").read()
        except FileNotFoundError:
            continue
        out.add(status.split("Cpus_allowed_list:\t", 1)[1].split()[0])
    return out


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 usable CPUs to see a placement")
def test_engines_run_where_health_says(tmp_path):
    usable = sorted(os.sched_getaffinity(0))
    reg = tmp_path / "models.yaml"
    reg.write_text("models:\n"
                   "  tiny:\n    builtin: jerry-tiny\n"  # auto, one thread: the last usable CPU
                   "  tiny-free:\n    builtin: jerry-tiny\n    cpus: all\n"
                   f"  tiny-listed:\n    builtin: jerry-tiny\n    cpus: [{usable[0]}]\n"
                   "  tiny-nowhere:\n    builtin: jerry-tiny\n    cpus: [4096]\n")
    s = start_server(tmp_path, {"OV_SERVER_REGISTRY": str(reg)})
    try:
        h = s.health().json()
        models = h["models"]
        assert h["status"] == "degraded", h
        expected = {"tiny": [usable[-1]], "tiny-free": usable, "tiny-listed": [usable[0]]}
        for mid, cpus in expected.items():
            m = models[mid]
            assert m["state"] == "ok" and m["cpus"] == cpus, (mid, m)
            # Every thread, the sampler pool OpenVINO starts after the pin included.
            assert thread_masks(m["pid"]) == {format_cpus(cpus)}, mid
        bad = models["tiny-nowhere"]
        assert bad["state"] == "failed" and "models.tiny-nowhere.cpus [4096]: none" in bad["error"], bad
        # Fixing the entry loads it (a load error is retried when its entry changes).
        reg.write_text(reg.read_text().replace("cpus: [4096]", f"cpus: [{usable[-1]}]"))
        assert wait_until(lambda: s.health().json()["models"]["tiny-nowhere"]["state"] == "ok", timeout=60)
        assert thread_masks(s.health().json()["models"]["tiny-nowhere"]["pid"]) == {str(usable[-1])}
    finally:
        stop_server(s)
