"""Bad input -> 4xx in OpenAI's error shape naming the parameter; the server
never crashes and keeps serving."""

import json

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MODEL = "jerry-tiny"
HELLO = [{"role": "user", "content": "Hello!"}]


def post(http, body, **kw):
    if isinstance(body, (bytes, str)):
        return http.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"}, **kw)
    return http.post("/v1/chat/completions", json=body, **kw)


def assert_error(r, status, param):
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert set(err) == {"message", "type", "param", "code", "request_id"}
    assert err["param"] == param, err
    assert isinstance(err["message"], str) and err["message"]
    return err


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe", b"[1, 2]", b'"text"', b"null",
                                 b'{"model": "jerry-tiny", "messages": [], "temperature": NaN}'])
def test_invalid_json(http, raw):
    r = post(http, raw)
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    "body, param",
    [
        ({"model": MODEL}, "messages"),
        ({"model": MODEL, "messages": []}, "messages"),
        ({"messages": HELLO}, "model"),
        ({"model": 5, "messages": HELLO}, "model"),
        ({"model": MODEL, "messages": "hi"}, "messages"),
        ({"model": MODEL, "messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": [{"content": "x"}]}, "messages[0].role"),
        ({"model": MODEL, "messages": [{"role": "user"}]}, "messages[0].content"),
        ({"model": MODEL, "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"model": MODEL, "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": -1}, "max_tokens"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": 0}, "max_tokens"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": "10"}, "max_tokens"),
        ({"model": MODEL, "messages": HELLO, "max_tokens": 10**12}, "max_tokens"),
        ({"model": MODEL, "messages": HELLO, "max_completion_tokens": 10**9}, "max_completion_tokens"),
        ({"model": MODEL, "messages": HELLO, "temperature": 3}, "temperature"),
        ({"model": MODEL, "messages": HELLO, "temperature": "hot"}, "temperature"),
        ({"model": MODEL, "messages": HELLO, "top_p": 0}, "top_p"),
        ({"model": MODEL, "messages": HELLO, "top_p": 1.5}, "top_p"),
        ({"model": MODEL, "messages": HELLO, "n": 0}, "n"),
        ({"model": MODEL, "messages": HELLO, "n": 1000}, "n"),
        ({"model": MODEL, "messages": HELLO, "seed": "x"}, "seed"),
        ({"model": MODEL, "messages": HELLO, "stop": 5}, "stop"),
        ({"model": MODEL, "messages": HELLO, "stop": [""]}, "stop[0]"),
        ({"model": MODEL, "messages": HELLO, "stop": ["a"] * 100}, "stop"),
        ({"model": MODEL, "messages": HELLO, "stream": "yes"}, "stream"),
        ({"model": MODEL, "messages": HELLO, "ignore_eos": "yes"}, "ignore_eos"),
        ({"model": MODEL, "messages": HELLO, "ignore_eos": 1}, "ignore_eos"),
        ({"model": MODEL, "messages": HELLO, "min_tokens": -1}, "min_tokens"),
        ({"model": MODEL, "messages": HELLO, "min_tokens": "3"}, "min_tokens"),
        ({"model": MODEL, "messages": HELLO, "min_tokens": 10, "max_tokens": 5}, "min_tokens"),
        ({"model": MODEL, "messages": HELLO, "min_tokens": 65}, "min_tokens"),
        ({"model": MODEL, "messages": HELLO, "logprobs": True}, "logprobs"),
        ({"model": MODEL, "messages": HELLO, "logit_bias": {"5": 10}}, "logit_bias"),
        ({"model": MODEL, "messages": HELLO, "tools": "x"}, "tools"),
        ({"model": MODEL, "messages": HELLO, "tool_choice": "auto"}, "tool_choice"),
        ({"model": MODEL, "messages": HELLO, "tool_choice": "sometimes"}, "tool_choice"),
        ({"model": MODEL, "messages": HELLO, "tools": [{"type": "function", "function": {"name": "a"}}],
          "tool_choice": {"type": "function", "function": {"name": "b"}}}, "tool_choice"),
        ({"model": MODEL, "messages": HELLO, "response_format": {"type": "json_schema"}}, "response_format"),
    ],
)
def test_bad_parameters(http, body, param):
    assert_error(post(http, body), 400, param)


def test_unknown_model_is_404_not_fallback(http, client):
    err = assert_error(post(http, {"model": "gpt-4o", "messages": HELLO}), 404, "model")
    assert err["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="jerry-unknown", messages=HELLO)
    assert http.get("/v1/models/jerry-unknown").status_code == 404


def test_prompt_longer_than_context(http):
    ctx = http.get("/health").json()["models"][MODEL]["context_length"]
    long = [{"role": "user", "content": "ab" * ctx}]
    err = assert_error(post(http, {"model": MODEL, "messages": long}), 400, "messages")
    assert err["code"] == "context_length_exceeded"
    # fits alone, but not with the requested completion
    half = [{"role": "user", "content": "a" * (ctx // 2)}]
    err = assert_error(post(http, {"model": MODEL, "messages": half, "max_tokens": ctx - 10}), 400, "max_tokens")
    assert err["code"] == "context_length_exceeded"


def test_openai_client_sees_bad_request(client):
    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model=MODEL, messages=HELLO, max_tokens=-5)
    assert exc.value.body["param"] == "max_tokens"


def test_unknown_route_and_method(http):
    assert http.get("/v1/nope").json()["error"]["code"] == "not_found"
    assert http.get("/v1/chat/completions").status_code == 405


def test_unknown_fields_ignored(http):
    r = post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 2, "user": "u", "metadata": {"a": 1},
                    "store": False, "parallel_tool_calls": True})
    assert r.status_code == 200


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
roles = st.sampled_from(["system", "user", "assistant", "tool", "developer", "bogus", ""])
messages = st.lists(
    st.fixed_dictionaries({"role": roles}, optional={"content": json_values | st.text(max_size=50),
                                                     "tool_call_id": json_values, "tool_calls": json_values}),
    max_size=4,
) | json_values
bodies = st.fixed_dictionaries(
    {},
    optional={
        "model": st.sampled_from([MODEL, "other", ""]) | json_values,
        "messages": messages,
        "max_tokens": st.integers(-5, 20) | json_values,
        "temperature": st.floats(-1, 3) | json_values,
        "top_p": st.floats(-1, 2) | json_values,
        "n": st.integers(-1, 20) | json_values,
        "seed": st.integers(-(2**63), 2**63) | json_values,
        "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=5) | json_values,
        "stream": st.booleans() | json_values,
        "tools": json_values,
        "tool_choice": st.sampled_from(["none", "auto", "required"]) | json_values,
        "response_format": json_values,
        "stream_options": json_values,
        "ignore_eos": st.booleans() | json_values,
        "min_tokens": st.integers(-2, 30) | json_values,
    },
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_fuzz_never_5xx(http, body):
    if isinstance(body.get("max_tokens"), int) and not isinstance(body.get("max_tokens"), bool):
        body["max_tokens"] = min(body["max_tokens"], 20)
    else:
        body.setdefault("max_tokens", 4)
    if isinstance(body.get("n"), int) and not isinstance(body.get("n"), bool):
        body["n"] = min(body["n"], 4)
    r = post(http, body)
    assert r.status_code < 500, (body, r.text)
    if r.status_code >= 400:
        assert set(r.json()["error"]) == {"message", "type", "param", "code", "request_id"}


def test_server_still_healthy_after_abuse(http):
    assert http.get("/health").status_code == 200
    assert post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 2}).status_code == 200


def test_openapi_schema_documents_body(http):
    r = http.get("/openapi.json")
    assert r.status_code == 200
    body = r.json()["paths"]["/v1/chat/completions"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert "messages" in body["properties"] and set(body["required"]) == {"model", "messages"}


TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


def tool_with(parameters: dict, name: str = "f") -> dict:
    return {"type": "function", "function": {"name": name, "parameters": parameters}}


def json_schema_format(schema: dict) -> dict:
    return {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}


def engine_pid(http) -> int:
    return http.get("/health").json()["models"][MODEL]["pid"]


@pytest.mark.parametrize("extra, param", [
    ({"response_format": json_schema_format({"type": "wat"})}, "response_format.json_schema.schema"),
    ({"response_format": json_schema_format({"type": "object", "properties": {"a": {"minLength": -1}}})},
     "response_format.json_schema.schema"),
    ({"tools": [TOOL, tool_with({"type": "wat"}, "g")], "tool_choice": "required"}, "tools[1].function.parameters"),
    ({"tools": [tool_with({"type": "wat"})], "tool_choice": {"type": "function", "function": {"name": "f"}}},
     "tools[0].function.parameters"),
    ({"tools": [tool_with({"required": "x"})]}, "tools[0].function.parameters"),
])
def test_invalid_json_schema_is_a_400_naming_it(http, extra, param):
    pid = engine_pid(http)
    for stream in (False, True):
        err = assert_error(post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 5, "stream": stream, **extra}),
                           400, param)
        assert err["code"] == "invalid_schema"
    assert post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 2}).status_code == 200
    assert engine_pid(http) == pid  # refused before the engine: nothing had to restart


# Valid JSON Schema that OpenVINO's grammar compiler refuses: caught by compiling it in the engine
# process before the request reaches the serving pipeline (it used to poison it for everyone).
UNCOMPILABLE = [
    {"type": "integer", "minimum": 5, "maximum": 1},
    {"$ref": "#/$defs/nope"},
    {"type": "string", "pattern": "(?=a)b"},
    {"type": "string", "minLength": 5, "maxLength": 2},
    {"enum": []},
]


@pytest.mark.parametrize("schema", UNCOMPILABLE, ids=lambda s: json.dumps(s))
def test_schema_that_cannot_compile_is_a_400_and_nobody_else_notices(http, schema):
    pid = engine_pid(http)
    cases = [({"response_format": json_schema_format(schema)}, "response_format"),
             ({"tools": [tool_with(schema)], "tool_choice": "required"}, "tools"),
             ({"tools": [TOOL, tool_with(schema, "g")], "tool_choice": "required", "parallel_tool_calls": False},
              "tools"),
             ({"tools": [tool_with(schema)]}, "tools"),  # auto: calls are constrained too (structural tags)
             ({"tools": [tool_with(schema)], "tool_choice": {"type": "function", "function": {"name": "f"}}}, "tools")]
    for extra, param in cases:
        for stream in (False, True):
            r = post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 5, "stream": stream, **extra})
            err = assert_error(r, 400, param)
            assert "cannot be compiled" in err["message"]
            assert "/" not in err["message"] and ".cc" not in err["message"]  # no paths of any build
    r = post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 3, "ignore_eos": True})
    assert r.status_code == 200 and r.json()["usage"]["completion_tokens"] == 3
    r = post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 100, "temperature": 0,
                    "response_format": {"type": "json_object"}})
    assert r.status_code == 200 and isinstance(json.loads(r.json()["choices"][0]["message"]["content"]), dict)
    assert http.get("/health").status_code == 200
    assert engine_pid(http) == pid  # the engine never broke


@pytest.mark.parametrize("depth", [65, 2000, 100_000])
def test_deeply_nested_json_is_a_400(http, depth):
    nested = "[" * depth + "]" * depth
    raw = '{"model": "jerry-tiny", "messages": [{"role": "user", "content": "x"}], "metadata": ' + nested + "}"
    r = post(http, raw.encode())
    assert r.status_code == 400, r.text
    assert set(r.json()["error"]) == {"message", "type", "param", "code", "request_id"}
    assert "nested" in r.json()["error"]["message"]
    deep_schema: dict = {"type": "object"}
    for _ in range(depth if depth < 1000 else 300):
        deep_schema = {"type": "object", "properties": {"a": deep_schema}}
    err = assert_error(post(http, {"model": MODEL, "messages": HELLO, "tools": [tool_with(deep_schema)]}), 400, "tools")
    assert "nested" in err["message"]


def test_nesting_up_to_the_limit_is_fine(http):
    schema: dict = {"type": "string"}
    for _ in range(20):
        schema = {"type": "object", "properties": {"a": schema}}
    r = post(http, {"model": MODEL, "messages": HELLO, "max_tokens": 2, "tools": [tool_with(schema)]})
    assert r.status_code == 200, r.text
