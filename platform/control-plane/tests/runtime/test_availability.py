"""`homelab health --models`: which public names are servable, from the services' probes (pure)."""

from __future__ import annotations

from pathlib import Path

from homelab.load.repo import load_repo
from homelab.runtime.availability import model_status
from homelab.runtime.probe import Result

from .conftest import write_mesh

REAL_REPO = Path(__file__).resolve().parents[4]


def results(**ok: bool) -> list[Result]:
    return [Result(name, f"http://x/{name}", up, 200 if up else None, 1.0, None if up else "refused", True)
            for name, up in ok.items()]


def states(rows) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {r.name: (r.state, r.path) for r in rows}


def test_real_mesh_paths_through_the_optimizer() -> None:
    repo = load_repo(REAL_REPO)
    rows = states(model_status(repo, results(**{"litellm-orch": True, "ov-server": True, "optillm-proxy": True})))
    assert rows["jerry-tiny"] == ("up", "ov-server")
    assert rows["jerry-tiny-moa"] == ("up", "optillm-proxy -> jerry-tiny -> ov-server")
    assert rows["jerry-chat"] == ("up", "ov-server")
    assert list(rows) == ["jerry-chat-lcpp", "jerry-chat", "jerry-tiny", "jerry-tiny-moa", "jerry-tiny-re2",
                          "jerry-tiny-bon"]


def test_real_mesh_the_two_engines_cover_for_each_other() -> None:
    """jerry-chat (ov-server) and jerry-chat-lcpp (the opt-in llamacpp-server) fall back to each other."""
    repo = load_repo(REAL_REPO)
    opt_in_absent = states(model_status(repo, results(**{"litellm-orch": True, "ov-server": True,
                                                         "llamacpp-server": False})))
    assert opt_in_absent["jerry-chat"] == ("up", "ov-server")
    assert opt_in_absent["jerry-chat-lcpp"] == ("fallback", "fallback jerry-chat: ov-server")
    ov_down = states(model_status(repo, results(**{"litellm-orch": True, "ov-server": False,
                                                   "llamacpp-server": True})))
    assert ov_down["jerry-chat"] == ("fallback", "fallback jerry-chat-lcpp: llamacpp-server")
    assert ov_down["jerry-tiny"][0] == "down"  # no fallback for the smoke-test model


def test_real_mesh_what_is_down() -> None:
    repo = load_repo(REAL_REPO)
    no_optimizer = states(model_status(repo, results(**{"litellm-orch": True, "ov-server": True,
                                                        "optillm-proxy": False})))
    assert no_optimizer["jerry-tiny"][0] == "up"
    assert no_optimizer["jerry-tiny-re2"] == ("down", "optillm-proxy is down (optillm-proxy)")
    no_backend = states(model_status(repo, results(**{"litellm-orch": True, "ov-server": False,
                                                      "optillm-proxy": True})))
    assert no_backend["jerry-tiny"] == ("down", "ov-server is down (ov-server)")
    assert no_backend["jerry-tiny-bon"] == ("down", "ov-server is down (optillm-proxy -> jerry-tiny -> ov-server)")
    no_gateway = states(model_status(repo, results(**{"litellm-orch": False, "ov-server": True})))
    assert set(no_gateway.values()) == {("down", "gateway litellm-orch is down")}
    unprobed = states(model_status(repo, results(**{"litellm-orch": True})))
    assert unprobed["jerry-tiny"] == ("unknown", "ov-server (not probed)")


def test_fallback_name_keeps_a_model_servable(tmp_path: Path) -> None:
    mesh = write_mesh(tmp_path / "repo")
    spec = "layer-inference/fake-backend/SERVICE_SPEC.md"
    path = mesh.root / spec
    path.write_text(path.read_text().replace("{name: jerry-fake, upstream_id: fake}",
                                             "{name: jerry-fake, upstream_id: fake, fallbacks: [jerry-spare]}"))
    spare = path.read_text().replace("name: fake-backend", "name: fake-spare", 1) \
        .replace("{name: jerry-fake, upstream_id: fake, fallbacks: [jerry-spare]}", "{name: jerry-spare, upstream_id: s}")
    (mesh.root / "layer-inference/fake-spare").mkdir()
    (mesh.root / "layer-inference/fake-spare/SERVICE_SPEC.md").write_text(spare)
    repo = load_repo(mesh.root)
    rows = states(model_status(repo, results(**{"fake-gw": True, "fake-backend": False, "fake-spare": True})))
    assert rows["jerry-fake"] == ("fallback", "fallback jerry-spare: fake-spare")
    rows = states(model_status(repo, results(**{"fake-gw": True, "fake-backend": False, "fake-spare": False})))
    assert rows["jerry-fake"] == ("down", "fake-backend is down (fake-backend)")


def test_an_alias_is_servable_through_its_targets_fallback(mesh: Path) -> None:
    """The optimizer calls the gateway back with the target name; the gateway applies that
    name's fallbacks, so the alias is servable while the target's backend is down."""
    from homelab.render.plan import EXECUTABLE
    from homelab.render.writer import write_all
    from homelab.scaffold.new import NewService, plan_new

    write_all(mesh, plan_new(load_repo(mesh), NewService("backend", "spare", "Spare.", lock=False,
                                                         models=[("jerry-spare", "s")])), EXECUTABLE)
    spec = mesh / "layer-inference/ov/SERVICE_SPEC.md"
    spec.write_text(spec.read_text().replace("{name: jerry-small, upstream_id: small-1b}",
                                             "{name: jerry-small, upstream_id: small-1b, fallbacks: [jerry-spare]}"))
    rows = states(model_status(load_repo(mesh), results(gw=True, ov=False, opt=True, spare=True)))
    assert rows["jerry-small-moa"] == ("up", "opt -> jerry-small -> ov -> fallback jerry-spare -> spare")
    rows = states(model_status(load_repo(mesh), results(gw=True, ov=False, opt=True, spare=False)))
    assert rows["jerry-small-moa"] == ("down", "ov is down (opt -> jerry-small -> ov)")


def test_a_model_down_inside_an_up_backend() -> None:
    """ov-server answers /health 200 while one model's engine is down: that model, and every alias
    through it, is down with the backend's reason; the backend's other models stay up."""
    repo = load_repo(REAL_REPO)
    why = "engine for jerry-tiny died: SIGFPE (signal 8); restarting it in 0.5 s"
    probed = results(**{"litellm-orch": True, "ov-server": True, "optillm-proxy": True})
    probed[1] = Result("ov-server", "http://x/ov-server", True, 200, 1.0, None, True,
                       models_down={"jerry-tiny": why, "jerry-other": "failed to load: x"})
    rows = states(model_status(repo, probed))
    assert rows["jerry-tiny"] == ("down", f"ov-server does not serve jerry-tiny: {why} (ov-server)")
    assert rows["jerry-tiny-moa"] == ("down", f"ov-server does not serve jerry-tiny: {why} "
                                              "(optillm-proxy -> jerry-tiny -> ov-server)")
    probed[1] = Result("ov-server", "http://x/ov-server", True, 200, 1.0, None, True,
                       models_down={"jerry-other": "failed to load: x"})
    assert states(model_status(repo, probed))["jerry-tiny"] == ("up", "ov-server")
