"""The custom auth function on its own (no process): fast, covers the edge cases."""

from __future__ import annotations

import asyncio

import pytest
from litellm.proxy._types import LitellmUserRoles, ProxyException
from litellm_orch import auth
from starlette.requests import Request


def _request(path: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": path, "headers": [], "query_string": b""})


def _run(path: str, key: str | None):
    return asyncio.run(auth.user_api_key_auth(_request(path), key))


@pytest.fixture(autouse=True)
def master(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LITELLM_MASTER_KEY", "sk-unit-master")
    return "sk-unit-master"


@pytest.mark.parametrize("key", ["sk-unit-master", "Bearer sk-unit-master", " sk-unit-master "])
def test_master_key_is_admin(key: str) -> None:
    user = _run("/v1/models", key)
    assert user.user_role == LitellmUserRoles.PROXY_ADMIN
    assert "sk-unit-master" not in (user.api_key or "")


@pytest.mark.parametrize("key", [None, "", "sk-unit-maste", "sk-unit-master2", "Bearer ", "SK-UNIT-MASTER"])
def test_anything_else_is_401(key: str | None) -> None:
    with pytest.raises(ProxyException) as info:
        _run("/v1/chat/completions", key)
    assert info.value.code == "401"


@pytest.mark.parametrize("path", sorted(auth.OPEN_ROUTES))
def test_probes_need_no_key(path: str) -> None:
    assert _run(path, None).user_role == LitellmUserRoles.INTERNAL_USER_VIEW_ONLY


def test_unset_master_key_refuses_everything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LITELLM_MASTER_KEY")
    with pytest.raises(ProxyException) as info:
        _run("/v1/models", "")
    assert info.value.code == "401" and "LITELLM_MASTER_KEY" in info.value.message
