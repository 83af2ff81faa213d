"""toolcalls.py (pure): the tool grammar's shape and the folding of tools into plain templates."""

import json

from ov_server.textproc import parse_tool_calls
from ov_server.toolcalls import call_schema, fold_for_plain_template, native_tool_support, tool_grammar

TOOLS = [{"type": "function", "function": {"name": "service_health", "description": "health",
                                           "parameters": {"type": "object", "properties": {"service": {"type": "string"}}}}},
         {"type": "function", "function": {"name": "topology"}}]


def test_call_schema_pins_the_name_and_the_arguments():
    s = call_schema("f", {"type": "object", "properties": {"a": {"type": "integer"}}})
    assert s["properties"]["name"] == {"const": "f"}
    assert s["properties"]["arguments"]["properties"]["a"] == {"type": "integer"}
    assert s["required"] == ["name", "arguments"] and s["additionalProperties"] is False
    assert call_schema("g", None)["properties"]["arguments"] == {"type": "object"}


def test_tool_grammar_is_plain_data_with_one_schema_per_tool():
    g = tool_grammar("required", [("a", None), ("b", {"type": "object"})], single=True)
    assert g.mode == "required" and g.single
    assert [n for n, _ in g.tools] == ["a", "b"]
    assert json.loads(g.tools[1][1])["properties"]["name"] == {"const": "b"}
    assert g == tool_grammar("required", [("a", None), ("b", {"type": "object"})], single=True)  # a cache key


def test_native_tool_support():
    assert native_tool_support("{% if tools %}{{ tools | tojson }}{% endif %}")
    assert not native_tool_support("{% for message in messages %}{{ message['content'] }}{% endfor %}")


def test_fold_puts_tools_calls_and_results_into_text():
    msgs = [{"role": "system", "content": "Be brief."},
            {"role": "user", "content": "is jerry-chat up?"},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "service_health",
                                                              "arguments": '{"service": "jerry-chat"}'}}]},
            {"role": "tool", "tool_call_id": "c1", "content": '[{"healthy": true}]'}]
    out = fold_for_plain_template(msgs, TOOLS)
    assert [m["role"] for m in out] == ["system", "user", "assistant", "user"]
    assert out[0]["content"].startswith("Be brief.\n\n") 
    assert "- service_health(service: optional string): health" in out[0]["content"]
    assert "- topology(): " in out[0]["content"] and "<tool_call>" in out[0]["content"]
    # The assistant's call is written in the very format the model is asked to use, and parses back.
    content, calls = parse_tool_calls(out[2]["content"], {"service_health"})
    assert content is None and calls[0].name == "service_health"
    assert json.loads(calls[0].arguments) == {"service": "jerry-chat"}
    assert out[3]["content"] == 'Result of service_health:\n[{"healthy": true}]'
    assert all(isinstance(m["content"], str) for m in out)


def test_fold_without_tools_keeps_history_and_adds_no_tool_list():
    msgs = [{"role": "user", "content": "hi"},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "topology", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "{}"}]
    out = fold_for_plain_template(msgs, None)
    assert [m["role"] for m in out] == ["user", "assistant", "user"]
    assert out[1]["content"] == "Checking."  # no call to imitate in the answering turn
    out = fold_for_plain_template([{**msgs[1], "content": None}, msgs[2]], None)
    assert out == [{"role": "user", "content": "Result of topology:\n{}"}]
    assert "Tools:" not in json.dumps(out)
    assert fold_for_plain_template([{"role": "user", "content": "q"}], TOOLS)[0]["role"] == "system"


def test_tool_list_is_one_line_per_tool_without_schema_noise():
    text = fold_for_plain_template([{"role": "user", "content": "q"}], [
        {"type": "function", "function": {"name": "fetch", "description": "Fetch a URL.\n\n        Refuses much.\n",
                                          "parameters": {"type": "object", "required": ["url"], "properties": {
                                              "url": {"type": "string", "title": "Url"},
                                              "n": {"anyOf": [{"type": "integer"}, {"type": "null"}]}}}}},
        {"type": "function", "function": {"name": "health", "description": "Is X\n   up?", "parameters": {
            "type": "object", "properties": {"s": {"anyOf": [{"enum": ["a", "b"], "type": "string"}, {"type": "null"}]}}}}}])
    block = text[0]["content"].split("Tools:\n")[1]
    assert block.splitlines() == ['- fetch(url: string, n: optional integer): Fetch a URL.',
                                  '- health(s: optional one of "a", "b"): Is X up?']


def test_cut_tail_is_dropped_only_when_asked():
    text = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "a", "argu'
    assert parse_tool_calls(text, {"a"}) == (text, [])
    content, calls = parse_tool_calls(text, {"a"}, drop_cut_tail=True)
    assert content is None and [c.name for c in calls] == ["a"]
    assert parse_tool_calls('<tool_call>{"na', {"a"}, drop_cut_tail=True) == ('<tool_call>{"na', [])
