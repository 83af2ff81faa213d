"""Mesh-level files: hosts and gateway (mesh/mesh.yaml), the port ledger (mesh/ports.yaml),
LAN-exposure approvals (mesh/approvals.yaml)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator

from homelab.contract.service import NAME_RE, Port, ServiceName, Strict

DEFAULT_MODEL_PATTERN = r"^jerry-[a-z0-9]+(-[a-z0-9]+)*$"


class Host(Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    address: str
    role: str = Field(min_length=1)

    @field_validator("address")
    @classmethod
    def _ip(cls, value: str) -> str:
        ipaddress.ip_address(value)
        return value


class Gateway(Strict):
    service: ServiceName
    public_base_url: Annotated[str, Field(pattern=r"^https?://")]


class Mesh(Strict):
    name: Annotated[str, Field(pattern=NAME_RE)]
    gateway: Gateway
    model_name_pattern: str = DEFAULT_MODEL_PATTERN
    # Where the checkout lives on every host when deployed under systemd.
    install_dir: Annotated[str, Field(pattern=r"^/")] = "/opt/homelab-llm"
    hosts: list[Host] = Field(min_length=1)


class PortEntry(Strict):
    host: ServiceName
    port: Port
    service: ServiceName
    status: Literal["active", "retired"] = "active"
    since: dt.date
    retired: dt.date | None = None
    note: str = ""


class PortLedger(Strict):
    ports: list[PortEntry]


class Approval(Strict):
    id: Annotated[str, Field(pattern=r"^LAN-[0-9]{4}$")]
    service: ServiceName
    host: ServiceName
    who: str = Field(min_length=1)  # who asked for the exposure
    # Who agreed to it: someone other than `who` and than the change's author (HL305 checks both;
    # optional in the schema so an unreviewed record is a violation with a line, not a parse error).
    reviewer: str | None = None
    date: dt.date
    reason: str = Field(min_length=1)


class Approvals(Strict):
    approvals: list[Approval] = []
