"""The `fetch` tool through the official SDK client, in-process: refusals come back as MCP
tool errors (isError), extraction works on local fixtures reached through the allow-list."""

from __future__ import annotations

import pytest
from conftest import settings
from mcp import Client


pytestmark = pytest.mark.anyio


async def call(server, **arguments):
    async with Client(server) as client:
        return await client.call_tool("fetch", arguments)


def error_text(result) -> str:
    assert result.is_error, f"expected a tool error, got {result}"
    return result.content[0].text


async def test_tool_is_listed_with_its_schema(make_server):
    s = settings()
    async with Client(make_server(s)) as client:
        tools = (await client.list_tools()).tools
    assert [t.name for t in tools] == ["fetch"]
    assert tools[0].input_schema["required"] == ["url"]
    assert set(tools[0].output_schema["properties"]) == {"title", "final_url", "content_type", "text", "truncated"}


@pytest.mark.parametrize("url, reason", [
    ("http://127.0.0.1:9/", "loopback"),
    ("http://127.1.2.3/", "loopback"),
    ("http://10.0.0.1/", "private"),
    ("http://10.20.30.40:8080/x", "private"),
    ("http://172.16.0.1/", "private"),
    ("http://172.31.0.1/", "private"),
    ("http://192.168.0.1/", "private"),
    ("http://169.254.169.254/latest/meta-data/", "cloud-metadata"),
    ("http://[::1]/", "loopback"),
    ("http://[::ffff:127.0.0.1]/", "loopback"),
    ("http://[::ffff:a00:1]/", "private"),
    ("http://[::ffff:169.254.169.254]/", "cloud-metadata"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.251/", "multicast"),
    ("http://0.0.0.0:80/", "unspecified"),
    ("http://localhost:9/", "loopback"),
    ("http://evil.example/", "loopback"),
    ("http://evil6.example/", "loopback"),
    ("http://intranet.example/", "private"),
    ("http://mixed.example/", "private"),
    ("http://metadata.example/", "cloud-metadata"),
])
async def test_ssrf_targets_are_refused(make_server, sentinel, url, reason):
    s = settings()
    text = error_text(await call(make_server(s), url=url))
    assert "blocked address" in text and reason in text
    assert sentinel.connects == []  # refused before any socket was opened


async def test_redirect_into_private_range_is_refused(make_server, sentinel, site):
    s = settings("127.0.0.1")
    text = error_text(await call(make_server(s), url=f"{site}/to-private"))
    assert "blocked address: 10.0.0.1 is private" in text
    assert sentinel.connects == ["127.0.0.1"]  # the first hop only


async def test_redirect_to_metadata_is_refused(make_server, site):
    s = settings("127.0.0.1")
    text = error_text(await call(make_server(s), url=f"{site}/to-metadata"))
    assert "cloud-metadata" in text


async def test_loopback_fixture_needs_the_allow_list(make_server, site):
    s = settings()
    assert "loopback" in error_text(await call(make_server(s), url=f"{site}/article"))


@pytest.mark.parametrize("allow", ["127.0.0.1", "127.0.0.0/8", "fixtures.test"])
async def test_extracts_article_from_local_fixture(make_server, site, allow):
    s = settings(allow)
    url = f"{site}/article" if allow != "fixtures.test" else site.replace("127.0.0.1", "fixtures.test") + "/article"
    result = await call(make_server(s), url=url)
    assert not result.is_error, result.content[0].text
    out = result.structured_content
    assert "Running a Tiny Mesh" in out["title"]  # trafilatura picks <title> or the <h1>
    assert out["final_url"] == url
    assert out["content_type"] == "text/html"
    assert "Pelican-unique-marker-7731" in out["text"]
    assert "gateway listens on port 4000" in out["text"]
    # Boilerplate and scripts stay out of model-ready text.
    assert "tracking" not in out["text"] and "font-family" not in out["text"]
    assert "Cookie banner" not in out["text"]
    assert out["truncated"] is False


async def test_redirect_followed_and_final_url_reported(make_server, site):
    s = settings("127.0.0.1")
    out = (await call(make_server(s), url=f"{site}/to-article")).structured_content
    assert out["final_url"] == f"{site}/article"
    assert "Pelican-unique-marker-7731" in out["text"]


async def test_too_many_redirects(make_server, site):
    s = settings("127.0.0.1", max_redirects=3)
    assert "too many redirects" in error_text(await call(make_server(s), url=f"{site}/loop/0"))


async def test_plain_text_and_max_chars(make_server, site):
    s = settings("127.0.0.1")
    out = (await call(make_server(s), url=f"{site}/plain", max_chars=20)).structured_content
    assert out["text"] == "plain words plain wo" and out["truncated"] is True
    assert out["content_type"] == "text/plain" and out["title"] is None


async def test_default_max_chars_setting_truncates(make_server, site):
    s = settings("127.0.0.1", max_chars=100)
    out = (await call(make_server(s), url=f"{site}/plain")).structured_content
    assert len(out["text"]) == 100 and out["truncated"] is True


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
async def test_size_limit(make_server, site, path):
    s = settings("127.0.0.1", max_bytes=50_000)
    assert "body over size limit" in error_text(await call(make_server(s), url=site + path))


async def test_time_limit(make_server, site):
    s = settings("127.0.0.1", timeout_s=0.5)
    assert "timeout" in error_text(await call(make_server(s), url=f"{site}/slow"))


async def test_unsupported_content_type(make_server, site):
    s = settings("127.0.0.1")
    assert "unsupported content type 'image/png'" in error_text(
        await call(make_server(s), url=f"{site}/image.png"))


async def test_http_error_status(make_server, site):
    s = settings("127.0.0.1")
    assert "HTTP error status 404" in error_text(await call(make_server(s), url=f"{site}/missing"))


@pytest.mark.parametrize("args, message", [
    ({"url": "ftp://example.org/file"}, "unsupported url scheme 'ftp'"),
    ({"url": "file:///etc/passwd"}, "unsupported url scheme 'file'"),
    ({"url": "not a url"}, "unsupported url scheme"),
    ({"url": "http://user:pw@public.example/"}, "credentials"),
    ({"url": "http://unknown-host.invalid/"}, "DNS lookup failed"),
    ({"url": "http://public.example/", "max_chars": 0}, "max_chars must be a positive integer"),
    # Each of these once escaped as a traceback with an empty or generic tool message.
    ({"url": "http://public.example:65536/"}, "port 65536 is out of range"),
    ({"url": "http://127.0.0.1:99999999999/"}, "port 99999999999 is out of range"),
    ({"url": "http://xn--zz.example/"}, "is not valid IDNA"),
    ({"url": "https://xn--a.com/"}, "is not valid IDNA"),
    ({"url": "http://xn--/"}, "invalid url: 'xn--' is not a valid host name"),
    ({"url": "http://a%20b.example/"}, "is not a valid host name"),
    ({"url": "http://-x-.example/"}, "is not a valid host name"),
    ({"url": "http://" + "a" * 64 + ".example/"}, "is not a valid host name"),
    ({"url": "http://\u2603\x00.example/"}, "invalid url"),
    ({"url": "http://[::1/"}, "invalid url"),
    ({"url": "http://256.1.1.1/"}, "invalid url"),
    ({"url": "http://public.example:" + "9" * 5000 + "/"}, "invalid url"),
    ({"url": "http://x/" + "a" * 10_000}, "longer than 8192 characters"),
    ({"url": "javascript:alert(1)"}, "unsupported url scheme 'javascript'"),
    ({}, "url"),
])
async def test_bad_input_is_a_clear_tool_error(make_server, sentinel, args, message):
    s = settings("127.0.0.1")
    text = error_text(await call(make_server(s), **args))
    assert message in text and len(text) < 1000, text
    assert sentinel.connects == []  # refused before any socket was opened


async def test_real_resolver_localhost_is_refused(sentinel):
    """The system resolver path (getaddrinfo; /etc/hosts answers `localhost` without a DNS server)."""
    from web_fetch.fetcher import make_client
    from web_fetch.server import build_server

    s = settings()
    server = build_server(s, lambda: make_client(s, inner=sentinel))
    text = error_text(await call(server, url="http://localhost:9/"))
    assert "blocked address: localhost" in text and "loopback" in text
    assert sentinel.connects == []
