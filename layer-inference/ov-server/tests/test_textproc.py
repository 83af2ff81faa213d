"""Unit tests for the pure text pipeline (no OpenVINO)."""

import json

from ov_server.textproc import Detokenizer, StopFilter, ToolStreamGate, parse_tool_calls


def byte_decode(ids):
    return bytes(ids).decode("utf-8", errors="replace")


def test_detokenizer_holds_back_split_utf8():
    d = Detokenizer(byte_decode)
    data = "aé€b".encode()
    out = "".join(d.feed([b]) for b in data) + d.flush()
    assert out == "aé€b"
    d2 = Detokenizer(byte_decode)
    assert d2.feed([0xE2]) == ""  # first byte of a 3-byte char: held back


def test_detokenizer_flush_keeps_incomplete_tail():
    d = Detokenizer(byte_decode)
    assert d.feed(list(b"ab")) == "ab"
    assert d.feed([0xE2, 0x82]) == ""
    assert d.flush() == "\ufffd"


def test_stop_filter_exact_and_split_across_chunks():
    f = StopFilter(["STOP"])
    out = f.feed("hello ST") + f.feed("O") + f.feed("P and more")
    assert out == "hello "
    assert f.stopped and f.flush() == ""


def test_stop_filter_releases_false_prefix():
    f = StopFilter(["xyz"])
    assert f.feed("abx") == "ab"
    assert f.feed("a") == "xa"
    assert f.flush() == ""
    f2 = StopFilter(["xyz"])
    assert f2.feed("abx") == "ab" and f2.flush() == "x"


def test_stop_filter_earliest_of_many():
    f = StopFilter(["world", "lo"])
    assert f.feed("hello world") == "hel"


def test_parse_hermes_tool_call():
    text = 'sure <tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    content, calls = parse_tool_calls(text, {"get_weather"})
    assert content == "sure"
    assert len(calls) == 1 and calls[0].name == "get_weather"
    assert json.loads(calls[0].arguments) == {"city": "Paris"}
    assert calls[0].id.startswith("call_")


def test_parse_multiple_and_bare_json_calls():
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call><tool_call>{"name": "b", "arguments": {"x": 1}}</tool_call>'
    content, calls = parse_tool_calls(text, {"a", "b"})
    assert content is None and [c.name for c in calls] == ["a", "b"]
    assert len({c.id for c in calls}) == 2
    content, calls = parse_tool_calls('{"name": "a", "arguments": {"q": "x"}}', {"a"})
    assert content is None and calls[0].name == "a"


def test_parse_leaves_non_calls_as_text():
    for text in ["just text", '{"name": "unknown", "arguments": {}}', "<tool_call>not json</tool_call>",
                 '{"not": "a call"}', "[1, 2]"]:
        content, calls = parse_tool_calls(text, {"a"})
        assert calls == [] and content == text


def test_tool_gate_streams_text_then_captures():
    g = ToolStreamGate()
    out = g.feed("Hello <tool") + g.feed("_call>{\"name\"") + g.feed(": \"a\"}</tool_call>")
    assert out == "Hello "
    assert g.capturing and g.rest().startswith("<tool_call>")
    g2 = ToolStreamGate()
    assert g2.feed("a <b") + g2.feed("c") == "a <bc"


def test_summarize_openvino_exception():
    from ov_server.errors import summarize_exception

    ov = RuntimeError("Exception from src/inference/src/cpp/core.cpp:117:\nException from src/x.cpp:706:\n"
                      'Device with "NOPE" name is not registered in the OpenVINO Runtime\n\n')
    assert summarize_exception(ov) == 'Device with "NOPE" name is not registered in the OpenVINO Runtime'
    assert summarize_exception(FileNotFoundError("model path /x does not exist")) == "model path /x does not exist"
    assert summarize_exception(RuntimeError("")) == "RuntimeError"
