"""Trustless-gateway client rules without I/O: request URLs and headers, response checks.

Spec: https://specs.ipfs.tech/http-gateways/trustless-gateway/ (notes in
``shared/spec/trustless-gateway.md`` §1, §2, §9). Everything here is pure: URL and
header building, parsing the CAR ``Content-Type`` parameters, ``entity-bytes``
grammar and resolution, gateway discovery (IPIP-280) and HTTP multiaddrs
(boxo ``ExtractHTTPAddress``).
"""

from __future__ import annotations

import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final
from urllib.parse import quote, urlsplit

from ..cid import CID
from ..errors import ConfigError, GatewayError
from .traversal import DAG_SCOPES, DagScope, format_entity_bytes

__all__ = [
    "CAR_MEDIA_TYPE",
    "MAX_BLOCK_BYTES",
    "RAW_MEDIA_TYPE",
    "CarParams",
    "GatewayRequest",
    "car_request",
    "check_raw_content_type",
    "gateway_file_paths",
    "gateways_from_environment",
    "http_multiaddr_to_url",
    "normalize_gateway_url",
    "parse_car_content_type",
    "raw_request",
]

RAW_MEDIA_TYPE: Final = "application/vnd.ipld.raw"
CAR_MEDIA_TYPE: Final = "application/vnd.ipld.car"
# Trustless gateway spec "Block Limits" (SHOULD); boxo httpnet and Helia's client use 2 MiB too.
MAX_BLOCK_BYTES: Final = 2 << 20



@dataclass(frozen=True, slots=True)
class GatewayRequest:
    """One GET: ``path_query`` goes after the gateway base URL."""

    path_query: str
    headers: tuple[tuple[str, str], ...]


def _cid_text(cid: CID | bytes | str) -> str:
    return str(CID.parse(cid)) if not isinstance(cid, CID) else str(cid)


def raw_request(cid: CID | bytes | str) -> GatewayRequest:
    """``GET /ipfs/{cid}?format=raw`` with the matching ``Accept`` (both, as the spec says)."""
    return GatewayRequest(f"/ipfs/{_cid_text(cid)}?format=raw", (("Accept", RAW_MEDIA_TYPE),))


def car_request(root: CID | bytes | str, path: Sequence[str] = (), *, dag_scope: DagScope = "all",
                entity_bytes: tuple[int, int | None] | None = None, dups: bool = False) -> GatewayRequest:
    """``GET /ipfs/{root}/{path}?format=car&dag-scope=…`` asking for ``order=dfs`` and ``dups=n``.

    The CAR parameters go both into ``Accept`` (the only place Helia reads them) and
    into ``car-order``/``car-dups`` (which win over ``Accept`` on boxo).
    """
    if dag_scope not in DAG_SCOPES:
        raise ConfigError(f"dag-scope must be one of {', '.join(DAG_SCOPES)}, got {dag_scope!r}")
    segments = "".join("/" + quote(p, safe="") for p in path)
    dups_text = "y" if dups else "n"
    query = f"format=car&dag-scope={dag_scope}"
    if entity_bytes is not None:
        query += f"&entity-bytes={format_entity_bytes(entity_bytes)}"
    query += f"&car-version=1&car-order=dfs&car-dups={dups_text}"
    accept = f"{CAR_MEDIA_TYPE}; version=1; order=dfs; dups={dups_text}"
    return GatewayRequest(f"/ipfs/{_cid_text(root)}{segments}?{query}", (("Accept", accept),))


@dataclass(frozen=True, slots=True)
class CarParams:
    """What a CAR response's ``Content-Type`` says: ``order`` is ``dfs`` or ``unk`` (missing = ``unk``);
    ``dups`` is True (``y``), False (``n``) or None (not said)."""

    order: str
    dups: bool | None


def _media_params(value: str) -> tuple[str, dict[str, str]]:
    media, *rest = value.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, sep, val = item.partition("=")
        if sep:
            params[key.strip().lower()] = val.strip().strip('"')
    return media.strip().lower(), params


def parse_car_content_type(value: str | None) -> CarParams:
    """Check a CAR response's ``Content-Type`` and read ``order``/``dups`` (spec §9.2).

    Raises:
        GatewayError: not ``application/vnd.ipld.car``, or a ``version`` other than 1.
    """
    media, params = _media_params(value or "")
    if media != CAR_MEDIA_TYPE:
        raise GatewayError(f"expected Content-Type {CAR_MEDIA_TYPE}, got {value!r}")
    if params.get("version", "1") != "1":
        raise GatewayError(f"unsupported CAR version {params['version']!r} in Content-Type {value!r}")
    order = params.get("order", "unk").lower()
    dups = params.get("dups", "").lower()
    return CarParams("dfs" if order == "dfs" else "unk", True if dups == "y" else False if dups == "n" else None)


def check_raw_content_type(value: str | None) -> None:
    """Raises :class:`GatewayError` unless ``value`` is ``application/vnd.ipld.raw``."""
    media, _ = _media_params(value or "")
    if media != RAW_MEDIA_TYPE:
        raise GatewayError(f"expected Content-Type {RAW_MEDIA_TYPE}, got {value!r}")


# -- where gateways come from --------------------------------------------------------------------

def normalize_gateway_url(url: str) -> str:
    """``http(s)://host[:port][/prefix]`` without a trailing ``/`` or ``/ipfs``.

    Raises:
        ConfigError: not an absolute http(s) URL, or it carries a query or fragment.
    """
    text = url.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises for a port that is not a number in 0..65535
    except ValueError as exc:  # "http://[::1", "http://host:abc"
        raise ConfigError(f"invalid gateway URL {url!r}: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"gateway URL must start with http:// or https://, got {url!r}")
    if parts.query or parts.fragment:
        raise ConfigError(f"gateway URL must not have a query or fragment: {url!r}")
    path = parts.path.rstrip("/")
    path = path.removesuffix("/ipfs")
    return f"{parts.scheme}://{parts.netloc}{path}"


def gateway_file_paths(environ: Mapping[str, str], platform: str = sys.platform) -> list[Path]:
    """Where a ``gateway`` hint file may live, in the order of the gateway-detection spec."""
    paths: list[Path] = []
    if environ.get("IPFS_PATH"):
        paths.append(Path(environ["IPFS_PATH"]) / "gateway")
    home = environ.get("HOME")
    if home:
        paths.append(Path(home) / ".ipfs" / "gateway")
    if platform == "win32":
        for var in ("LOCALAPPDATA", "APPDATA", "PROGRAMDATA"):
            if environ.get(var):
                paths.append(Path(environ[var]) / "ipfs" / "gateway")
    elif platform == "darwin":
        if home:
            paths.append(Path(home) / "Library" / "Application Support" / "ipfs" / "gateway")
        paths.append(Path("/Library/Application Support/ipfs/gateway"))
    else:
        if environ.get("XDG_CONFIG_HOME"):
            paths.append(Path(environ["XDG_CONFIG_HOME"]) / "ipfs" / "gateway")
        if home:
            paths.append(Path(home) / ".config" / "ipfs" / "gateway")
        paths.append(Path("/etc/ipfs/gateway"))
    return paths


def gateways_from_environment(environ: Mapping[str, str] | None = None, *, read_files: bool = True) -> list[str]:
    """The user's gateways as IPIP-280 says: ``IPFS_GATEWAY`` first, else the first ``gateway`` file.

    ``IPFS_GATEWAY`` may hold several URLs separated by whitespace (as ipfs-chromium
    reads it); a ``gateway`` file holds one URL per line. Nothing is ever guessed: with
    neither, the list is empty (no public gateway is a default, per the spec's Security section).

    Raises:
        ConfigError: a URL that is not http(s).
    """
    env = os.environ if environ is None else environ
    value = env.get("IPFS_GATEWAY", "").strip()
    if value:
        return [normalize_gateway_url(u) for u in value.split()]
    if not read_files:
        return []
    for path in gateway_file_paths(env):
        try:
            text = path.read_text("ascii", errors="replace")
        except OSError:
            continue
        urls = [line.strip() for line in text.splitlines() if line.strip()]
        if urls:
            return [normalize_gateway_url(u) for u in urls]
    return []


def _private_or_loopback(host: str) -> bool:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return ip.is_loopback or ip.is_private


def http_multiaddr_to_url(maddr: str) -> str | None:
    """The base URL of an HTTP multiaddr, or None when it is not one (boxo ``ExtractHTTPAddress``).

    ``/ip4/127.0.0.1/tcp/8080/http`` → ``http://127.0.0.1:8080``; ``/dns4/h/tcp/443/https``
    and ``…/tls/http`` → ``https://h``. Plain ``http`` is accepted only to a loopback or
    private IP literal (boxo's rule). ``/p2p/…`` and other trailing parts are ignored.
    """
    parts = [p for p in maddr.split("/")]
    if parts[:1] != [""]:
        return None
    parts = parts[1:]
    host = port = scheme = None
    tls = False
    ipv6 = False
    i = 0
    while i < len(parts):
        name = parts[i]
        if name in ("ip4", "ip6", "dns", "dns4", "dns6") and i + 1 < len(parts):
            host, ipv6 = parts[i + 1], name == "ip6"
            i += 2
        elif name in ("tcp", "udp") and i + 1 < len(parts):
            port = parts[i + 1]
            i += 2
        elif name == "tls":
            tls = True
            i += 1
        elif name == "sni" and i + 1 < len(parts):
            tls = True
            i += 2
        elif name == "http":
            scheme = "https" if tls else "http"
            i += 1
        elif name == "https":
            scheme = "https"
            i += 1
        elif name in ("p2p", "ipfs", "http-path") and i + 1 < len(parts):
            i += 2
        else:
            i += 1
    if host is None or scheme is None:
        return None
    if scheme == "http" and not _private_or_loopback(host):
        return None
    default = "443" if scheme == "https" else "80"
    port = port or default
    if not port.isdigit():
        return None
    shown = f"[{host}]" if ipv6 else host
    return f"{scheme}://{shown}" + ("" if port == default else f":{port}")
