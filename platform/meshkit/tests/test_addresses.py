"""meshkit.addresses: how `homelab check` (HL401) and clients decide a URL reaches a backend."""

from __future__ import annotations

import pytest

from meshkit.addresses import NeverCall, canonical_host, hostport, reached_at, url_owner

V6 = NeverCall("::1", 8100, "be6", "backend")
V4 = NeverCall("127.0.0.1", 4010, "be", "backend")
LAN = NeverCall("192.168.1.5", 4010, "be", "backend")


@pytest.mark.parametrize("url, owner", [
    ("http://127.0.0.1:4010/v1", V4),
    ("http://localhost:4010", V4),
    ("HTTP://LOCALHOST:4010/", V4),
    ("http://[::1]:8100/v1", V6),
    ("http://[0:0::1]:8100/v1", V6),  # another spelling of ::1
    ("http://localhost:8100/v1", V6),  # localhost may resolve to ::1
    ("http://192.168.1.5:4010", LAN),
    ("http://127.0.0.1:4000/v1", None),
    ("http://[::1]:4010/v1", None),  # the v4-only backend is not on ::1
    ("not a url", None),
    ("http://::1:8100", None),  # unbracketed IPv6 is no URL (and no crash)
])
def test_url_owner(url: str, owner: NeverCall | None) -> None:
    assert url_owner(url, [V4, V6, LAN]) == owner


def test_reached_at() -> None:
    assert reached_at("127.0.0.1", "10.0.0.2") == ["127.0.0.1"]
    assert reached_at("0.0.0.0", "10.0.0.2") == ["10.0.0.2", "127.0.0.1"]
    assert reached_at("::", "fd00::0:2") == ["127.0.0.1", "::1", "fd00::2"]
    assert reached_at("0.0.0.0", None) == ["127.0.0.1"]


def test_canonical_forms() -> None:
    assert canonical_host("[FD00:0::1]") == "fd00::1"
    assert canonical_host("Gw.LAN") == "gw.lan"
    assert hostport("https://gw.lan/v1") == ("gw.lan", 443)
