"""Fetching media over http(s) without becoming a proxy into our own network.

Each hop (redirects are followed by hand, at most `fetch_max_redirects`) resolves the host
once, refuses private, loopback, link-local and other non-global addresses unless
`fetch_allow_private`, and then connects to the very address it checked (the URL is pinned to
the IP; Host header and TLS SNI keep the name), so a DNS answer that changes between the check
and the connect cannot redirect us. The body is streamed against the byte cap, and the whole
fetch runs under `fetch_timeout_s`.

Addresses are judged after resolution, so a host written as a decimal (`2130706433`), octal
(`017700000001`) or hex (`0x7f.1`) number is judged as the address it is. An IPv6 address that
carries an IPv4 one (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible `::a.b.c.d`, NAT64
`64:ff9b::/96`, 6to4 `2002::/16`, Teredo) must be public on both counts: a NAT64 gateway would
take `64:ff9b::a9fe:a9fe` to 169.254.169.254, the metadata service.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket

import httpx

from app.config import Settings
from app.errors import InvalidRequestError, MediaError, MediaTimeoutError, PayloadTooLargeError


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_V4_COMPATIBLE = ipaddress.ip_network("::/96")
# Special-purpose blocks Python's is_global still calls global (IANA: not globally reachable).
_NOT_GLOBAL = (ipaddress.ip_network("192.0.0.0/24"),)


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    found = []
    if ip.ipv4_mapped is not None:
        found.append(ip.ipv4_mapped)
    if ip in _V4_COMPATIBLE or any(ip in net for net in _NAT64):
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    if ip.sixtofour is not None:
        found.append(ip.sixtofour)
    if ip.teredo is not None:
        found.extend(ip.teredo)
    return found


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        inner = _embedded_ipv4(ip)
        if ip.ipv4_mapped is not None:  # an IPv4 address in IPv6 clothing: judge the IPv4 one
            return all(_is_public(str(v4)) for v4 in inner)
        if ip in _V4_COMPATIBLE or not all(_is_public(str(v4)) for v4 in inner):
            return False  # ::a.b.c.d is deprecated: nothing legitimate serves media there
    elif any(ip in net for net in _NOT_GLOBAL):
        return False
    return ip.is_global and not ip.is_multicast


class HttpFetcher:
    def __init__(self, settings: Settings):
        self.settings = settings
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            s = self.settings
            self._client = httpx.AsyncClient(
                follow_redirects=False, trust_env=False,
                timeout=httpx.Timeout(s.fetch_timeout_s, connect=s.fetch_connect_timeout_s),
                headers={"User-Agent": "cosmos-serve"})
        return self._client

    async def _pin(self, url: httpx.URL) -> httpx.Request:
        """A GET for `url`, addressed to a checked IP unless private targets are allowed."""
        if self.settings.fetch_allow_private:
            return self._http().build_request("GET", url)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(url.host, port,
                                                                 type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise MediaError(f"cannot resolve host {url.host!r}") from exc
        addresses = [info[4][0] for info in infos]
        if not addresses or not all(_is_public(a) for a in addresses):
            raise InvalidRequestError(
                f"host {url.host!r} resolves to a private or local address; fetching it is "
                f"not allowed (fetch_allow_private)", code="url_not_allowed")
        request = self._http().build_request(
            "GET", url.copy_with(host=addresses[0]),
            headers={"Host": url.netloc.decode("ascii")},
            extensions={"sni_hostname": url.host} if url.scheme == "https" else {})
        return request

    async def fetch(self, url: str, max_bytes: int, limit_name: str) -> bytes:
        s = self.settings
        try:
            async with asyncio.timeout(s.fetch_timeout_s):
                return await self._follow(httpx.URL(url), max_bytes, limit_name)
        except TimeoutError as exc:
            raise MediaTimeoutError(f"fetching the media URL took longer than "
                                    f"{s.fetch_timeout_s:g} s (fetch_timeout_s)") from exc
        except httpx.ConnectTimeout as exc:
            raise MediaTimeoutError(f"connecting to the media URL's host took longer than "
                                    f"{s.fetch_connect_timeout_s:g} s "
                                    f"(fetch_connect_timeout_s)") from exc
        except httpx.TimeoutException as exc:
            raise MediaTimeoutError(f"the media URL's server stopped sending for "
                                    f"{s.fetch_timeout_s:g} s (fetch_timeout_s)") from exc
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise MediaError(f"could not fetch the media URL: {exc}") from exc

    async def _follow(self, url: httpx.URL, max_bytes: int, limit_name: str) -> bytes:
        for _ in range(self.settings.fetch_max_redirects + 1):
            if url.scheme not in ("http", "https") or not url.host:
                raise InvalidRequestError(f"cannot fetch {str(url)[:100]!r}: only http(s) URLs "
                                          f"can be fetched", code="unsupported_url")
            response = await self._http().send(await self._pin(url), stream=True)
            try:
                if response.is_redirect:
                    url = url.join(response.headers["location"])
                    continue
                if response.status_code >= 400:
                    raise MediaError(f"fetching the media URL returned HTTP "
                                     f"{response.status_code}")
                return await _read_capped(response, max_bytes, limit_name)
            finally:
                await response.aclose()
        raise MediaError(f"the media URL redirected more than {self.settings.fetch_max_redirects}"
                         f" times (fetch_max_redirects)")

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


async def _read_capped(response: httpx.Response, max_bytes: int, limit_name: str) -> bytes:
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLargeError(f"the media is {int(declared)} bytes; the limit is "
                                   f"{max_bytes} bytes ({limit_name})")
    chunks, total = [], 0
    async for chunk in response.aiter_bytes():
        total += len(chunk)
        if total > max_bytes:
            raise PayloadTooLargeError(f"the media is larger than the limit of {max_bytes} "
                                       f"bytes ({limit_name})")
        chunks.append(chunk)
    return b"".join(chunks)
