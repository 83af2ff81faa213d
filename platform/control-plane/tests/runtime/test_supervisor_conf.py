"""supervisord.conf is a pure rendering of the contracts; check it with supervisord's own parser."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from supervisor.datatypes import dict_of_key_value_pairs
from supervisor.options import ServerOptions

from homelab.runtime.paths import RuntimePaths
from homelab.runtime.programs import Program
from homelab.runtime.supervisor_conf import Unrepresentable, environment_value, render


def program(name: str = "svc", env: dict[str, str] | None = None,
            command: tuple[str, ...] = ("uv", "run", "svc", "--port", "4010")) -> Program:
    return Program(name=name, kind="backend", command=command, directory=Path("/srv/repo/svc"),
                   env={"A": "1"} if env is None else env, bind="127.0.0.1", port=4010,
                   health_url="http://127.0.0.1:4010/health", autostart=True, uv_project=None)


def parse(text: str, tmp_path: Path) -> ServerOptions:
    conf = tmp_path / "supervisord.conf"
    conf.write_text(text)
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    return options


def test_one_program_per_service_with_group_kill_and_restart(tmp_path: Path) -> None:
    paths = RuntimePaths(tmp_path)
    text = render([program("ov-server"), program("litellm-orch")], paths)
    parser = configparser.RawConfigParser()
    parser.read_string(text)
    assert [s for s in parser.sections() if s.startswith("program:")] == [
        "program:ov-server", "program:litellm-orch"]
    section = parser["program:ov-server"]
    assert section["autorestart"] == "true"
    assert section["stopasgroup"] == "true" and section["killasgroup"] == "true"
    assert section["autostart"] == "false"  # `homelab up` starts them in order itself
    assert section["stdout_logfile"] == str(paths.log("ov-server"))
    assert parser["unix_http_server"]["file"] == str(paths.socket)


def test_supervisord_reads_it_back(tmp_path: Path) -> None:
    env = {"KEY": "sk-abc", "URL": "http://127.0.0.1:4000/v1", "LIST": "a,b c", "PCT": "50%"}
    cmd = ("/srv/repo/svc/scripts/start.sh", "--host", "0.0.0.0", "--arg", "with space")
    paths = RuntimePaths(tmp_path)
    paths.ensure()
    options = parse(render([program(env=env, command=cmd)], paths), tmp_path)
    (group,) = options.process_group_configs
    (proc,) = group.process_configs
    assert proc.environment == env
    assert proc.command == "/srv/repo/svc/scripts/start.sh --host 0.0.0.0 --arg 'with space'"
    assert proc.stopasgroup and proc.killasgroup and proc.autorestart
    assert proc.directory == "/srv/repo/svc"


def test_pure_same_input_same_text(tmp_path: Path) -> None:
    paths = RuntimePaths(tmp_path)
    assert render([program()], paths) == render([program()], paths)


@pytest.mark.parametrize("value", ['"quoted"', "'quoted'", 'both \' and "', "line\nbreak",
                                   "a ;comment", "a #comment"])
def test_unrepresentable_values_are_refused_not_mangled(value: str) -> None:
    with pytest.raises(Unrepresentable, match="svc: env X"):
        environment_value(program(env={"X": value}))


_safe = st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=40)


def test_json_value_round_trips() -> None:
    """A JSON setting (open-webui's DEFAULT_MODEL_METADATA) reaches the program unchanged."""
    env = {"J": '{"capabilities": {"builtin_tools": false}}', "U": "http://a:1;http://b:2"}
    assert dict_of_key_value_pairs(environment_value(program(env=env))) == env


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.from_regex(r"[A-Z][A-Z0-9_]{0,10}", fullmatch=True), _safe, max_size=5))
def test_environment_round_trips_or_is_refused(env: dict[str, str]) -> None:
    try:
        text = environment_value(program(env=env))
    except Unrepresentable:
        return  # refused with a clear message is fine; silently changed is not
    assert dict_of_key_value_pairs(text.replace("%%", "%")) == env
