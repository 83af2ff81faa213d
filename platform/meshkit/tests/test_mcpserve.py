"""meshkit.mcpserve: the command line the MCP tool servers share (their own suites run the real
servers through it: mesh-status's and web-fetch's test_transports.py)."""

from __future__ import annotations

from typing import Any

import pytest

from meshkit import mcpserve


class RecordingServer:
    """Stands in for the SDK's MCPServer, which is not under test here: records how it is run."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, dict[str, Any]]] = []

    def run(self, transport: str, **kwargs: Any) -> None:
        self.runs.append((transport, kwargs))


def test_defaults_are_stdio_on_loopback_and_the_servers_port() -> None:
    assert mcpserve.parse("tool", "A tool.", 4049, []) == mcpserve.ServeOptions("stdio", "127.0.0.1", 4049)


def test_streamable_http_gets_host_and_port_stdio_gets_neither() -> None:
    server = RecordingServer()
    mcpserve.serve(server, mcpserve.parse("tool", "A tool.", 4049, [
        "--transport", "streamable-http", "--host", "::1", "--port", "5000"]))
    mcpserve.serve(server, mcpserve.parse("tool", "A tool.", 4049, ["--transport", "stdio"]))
    assert server.runs == [("streamable-http", {"host": "::1", "port": 5000}), ("stdio", {})]


def test_help_names_the_program_and_an_example_on_its_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        mcpserve.parse("tool", "A tool that does X.", 4049, ["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and out.startswith("usage: tool [-h] [--transport {stdio,streamable-http}]")
    assert "A tool that does X." in out
    assert "example: tool --transport streamable-http --host 127.0.0.1 --port 4049" in out


@pytest.mark.parametrize("argv", [["--transport", "sse"], ["--port", "forty"], ["--bogus"]])
def test_malformed_arguments_exit_2_with_argparse_usage(argv: list[str],
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        mcpserve.parse("tool", "A tool.", 4049, argv)
    assert exit_.value.code == 2 and "usage: tool" in capsys.readouterr().err


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1.", "", "example.org"])
def test_a_host_name_is_refused_in_one_line_naming_the_option(host: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(mcpserve.UsageError) as err:
        mcpserve.check_host(host)
    assert mcpserve.fail("tool", err.value) == 2
    assert capsys.readouterr().err == f"tool: error: --host must be an IP address, got {host!r}\n"


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "192.168.1.10"])
def test_ip_addresses_pass(host: str) -> None:
    mcpserve.check_host(host)
