"""The address policy as pure functions: every class of address the issue lists."""

import ipaddress

import pytest

from web_fetch.config import ConfigError, from_env
from web_fetch.guard import AllowList, Refused, blocked_reason, check

ip = ipaddress.ip_address


@pytest.mark.parametrize("address, reason", [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "cloud-metadata"),
    ("169.254.1.1", "link-local"),
    ("100.100.100.200", "cloud-metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("0.0.0.0", "unspecified"),
    ("100.64.0.1", "reserved/non-global"),
    ("::1", "loopback"),
    ("::", "unspecified"),
    ("::ffff:127.0.0.1", "loopback"),
    ("::ffff:10.0.0.1", "private"),
    ("::ffff:169.254.169.254", "cloud-metadata"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:7f00:1::", "loopback"),
    ("fe80::1", "link-local"),
    ("fc00::1", "private"),
    ("fd00:ec2::254", "cloud-metadata"),
    ("ff02::1", "multicast"),
])
def test_refused_addresses(address, reason):
    assert blocked_reason(ip(address)) == reason


@pytest.mark.parametrize("address", ["93.184.216.34", "1.1.1.1", "172.32.0.1", "2606:4700::1111"])
def test_public_addresses_pass(address):
    assert blocked_reason(ip(address)) is None
    check("example.org", ip(address), AllowList())


def test_refusal_message_names_host_reason_and_the_way_out():
    with pytest.raises(Refused, match=r"evil\.example \(127\.0\.0\.1\) is loopback.*WEB_FETCH_ALLOW"):
        check("evil.example", ip("127.0.0.1"), AllowList())


def test_allow_list_cidr_and_hostname():
    allow = AllowList.parse("127.0.0.1/32, nas.lan ,10.0.0.0/8")
    check("whatever", ip("127.0.0.1"), allow)
    check("x", ip("10.9.9.9"), allow)
    check("NAS.lan.", ip("192.168.1.5"), allow)
    with pytest.raises(Refused):
        check("other.lan", ip("192.168.1.5"), allow)
    with pytest.raises(Refused):
        check("x", ip("127.0.0.2"), allow)


def test_hostname_entry_never_opens_cloud_metadata():
    with pytest.raises(Refused, match="cloud-metadata"):
        check("nas.lan", ip("169.254.169.254"), AllowList.parse("nas.lan"))
    check("x", ip("169.254.169.254"), AllowList.parse("169.254.169.254"))


def test_bad_settings_name_the_variable():
    with pytest.raises(ConfigError, match="WEB_FETCH_ALLOW"):
        from_env({"WEB_FETCH_ALLOW": "not a host/xx"})
    with pytest.raises(ConfigError, match="WEB_FETCH_MAX_BYTES"):
        from_env({"WEB_FETCH_MAX_BYTES": "lots"})
    with pytest.raises(ConfigError, match="WEB_FETCH_TIMEOUT_S"):
        from_env({"WEB_FETCH_TIMEOUT_S": "-1"})
    s = from_env({"WEB_FETCH_ALLOW": "127.0.0.1", "WEB_FETCH_MAX_BYTES": "1000", "WEB_FETCH_TIMEOUT_S": "2.5"})
    assert (s.max_bytes, s.timeout_s, bool(s.allow)) == (1000, 2.5, True)
