"""Service settings: safe defaults, overridable by LABINTERP_* environment variables or create_app()."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields, replace
from typing import Any
from collections.abc import Mapping

from .panels import BatchLimits, Limits

AUTH_MODES = ("keys", "open-on-loopback")
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 1_048_576  # LABINTERP_MAX_BODY_BYTES: larger bodies get 413 unread
    max_results: int = 100  # LABINTERP_MAX_RESULTS: results per panel
    max_history: int = 100  # LABINTERP_MAX_HISTORY: earlier results per panel
    max_string_length: int = 200  # LABINTERP_MAX_STRING_LENGTH: ids, free-text fields
    ranges_dir: str | None = None  # LABINTERP_RANGES_DIR: a laboratory's own knowledge folder
    # LABINTERP_API_KEYS: comma-separated. When unset, the key of LABINTERP_API_KEY_FILE (created with a
    # random key on first start); LABINTERP_AUTH=open-on-loopback, by name, opens the API to loopback
    # peers only (service/http/auth.py). There is no way to answer patient paths without a key beyond it.
    api_keys: tuple[str, ...] = ()
    api_key_file: str = ".labinterp/api-key"
    auth: str = "keys"
    form: bool = True  # LABINTERP_FORM: on | off; the clinician form at /
    max_fhir_resources: int = 1000  # LABINTERP_MAX_FHIR_RESOURCES: resources per FHIR request
    max_batch_bytes: int = 16_777_216  # LABINTERP_MAX_BATCH_BYTES: body limit of the batch endpoint
    # LABINTERP_MAX_BATCH_RESULTS: results in one batch, all panels together. It bounds a worker's
    # memory (about 4.5 kB per result while the answer is built); a batch over it would otherwise be
    # retried by the load balancer on every replica in turn.
    max_batch_results: int = 20_000
    # LABINTERP_DRAIN_MAX_BYTES and LABINTERP_DRAIN_SECONDS: what is left unread of a refused body is
    # read and discarded after the answer, at most this many bytes for at most this long, so that a
    # client that writes its whole body before reading gets the 413 (service/ops/drain.py).
    drain_max_bytes: int = 134_217_728
    drain_seconds: int = 5
    # The MLLP listener (service/hl7v2/listener.py), on HOST:LABINTERP_MLLP_PORT; its messages are
    # bounded by max_body_bytes like a request body.
    mllp: bool = True  # LABINTERP_MLLP: on | off
    mllp_port: int = 2575  # LABINTERP_MLLP_PORT
    # LABINTERP_MLLP_FORWARD: host:port of the downstream system (the EHR's inbound interface). Unset,
    # nothing is delivered, so every message is answered AE (the sender keeps it and resends later).
    mllp_forward: str | None = None
    mllp_forward_timeout: int = 30  # LABINTERP_MLLP_FORWARD_TIMEOUT: seconds to wait for the downstream ACK
    mllp_read_timeout: int = 30  # LABINTERP_MLLP_READ_TIMEOUT: seconds a begun message may take to arrive
    mllp_idle_timeout: int = 600  # LABINTERP_MLLP_IDLE_TIMEOUT: seconds a connection may wait between messages
    mllp_max_connections: int = 64  # LABINTERP_MLLP_MAX_CONNECTIONS: senders served at once; more are closed
    # LABINTERP_MLLP_ALLOW: comma-separated networks (CIDR) whose peers may send. MLLP has no
    # authentication, so by default only this host may: a listener on HOST=0.0.0.0 still answers no
    # one else until the laboratory's senders (or the proxy in front) are named here.
    mllp_allow: tuple[str, ...] = ("127.0.0.0/8", "::1/128")

    def panel_limits(self) -> Limits:
        return Limits(max_results=self.max_results, max_string_length=self.max_string_length,
                      max_history=self.max_history)

    def batch_limits(self) -> BatchLimits:
        return BatchLimits(max_results=self.max_batch_results)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("LABINTERP_" + f.name.upper())
            if raw is None or raw == "":
                continue
            if f.type == "bool":
                if raw.lower() not in ("on", "off"):
                    raise ValueError(f"LABINTERP_{f.name.upper()} must be on or off, not {raw!r}")
                values[f.name] = raw.lower() == "on"
            elif f.name == "auth":
                if raw not in AUTH_MODES:
                    raise ValueError(f"LABINTERP_AUTH must be one of {', '.join(AUTH_MODES)}, not {raw!r}")
                values[f.name] = raw
            elif f.name == "api_keys":
                values[f.name] = tuple(k.strip() for k in raw.split(",") if k.strip())
            elif f.type == "int":
                try:
                    values[f.name] = int(raw)
                except ValueError:
                    raise ValueError(f"LABINTERP_{f.name.upper()} must be a whole number, not {raw!r}") from None
                if values[f.name] < 1:
                    raise ValueError(f"LABINTERP_{f.name.upper()} must be at least 1")
                if f.name.endswith("_port") and values[f.name] > 65535:
                    raise ValueError(f"LABINTERP_{f.name.upper()} must be a TCP port (1 to 65535)")
            elif f.name == "mllp_allow":
                values[f.name] = tuple(n.strip() for n in raw.split(",") if n.strip())
                allowed_networks(values[f.name])  # checked now, with the variable's name
            elif f.name == "mllp_forward":
                values[f.name] = raw.strip()
                forward_address(values[f.name])  # checked now, with the variable's name
            else:
                values[f.name] = raw
        return replace(cls(**values), **overrides)


def allowed_networks(texts: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """LABINTERP_MLLP_ALLOW as networks; ValueError naming it and the entry it cannot read."""
    networks = []
    for text in texts:
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"LABINTERP_MLLP_ALLOW must list networks such as 10.1.0.0/16, not {text!r}") from None
    return tuple(networks)


def forward_address(text: str) -> tuple[str, int]:
    """LABINTERP_MLLP_FORWARD (`host:port`, `[v6]:port`) as (host, port); ValueError naming it."""
    host, _, port = text.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"LABINTERP_MLLP_FORWARD must be host:port, not {text!r}")
    return host, int(port)
