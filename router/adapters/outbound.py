"""Where the router may send a department's data: public addresses, over https.

A webhook URL is the department's word; the router must not be made to POST personal
data to its own Redis (127.0.0.1), a cloud metadata service (169.254.169.254), another
machine on the private network (10.0.0.1) or the same in disguise (``0x7f000001``,
``[::1]``, ``::ffff:127.0.0.1``). So an address is refused if it is private, loopback,
link-local, multicast, reserved or unspecified, checked twice:

* when the webhook is added (``check_url``): the URL must be https, and the host's
  addresses, as resolved then, must all be public;
* at every connection (``opener``): the host is resolved again and the connection is
  made to the address that was checked, never to a second lookup, so a name that
  resolves to a public address when it is added and to 127.0.0.1 later (DNS rebinding)
  is refused too. TLS still checks the certificate against the host name.

``allow_http_loopback`` (a department on this machine, for local tests and demos)
allows http and loopback addresses, and nothing else.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressRefused(OSError):
    """A webhook's host resolves to an address the router never sends data to."""


def refused(address: Address, allow_loopback: bool = False) -> bool:
    """Whether the router refuses to connect to ``address``."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return not allow_loopback
    return (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
    )


def resolve(host: str, port: int | None) -> list[Address]:
    """Every address ``host`` resolves to (numeric forms such as ``0x7f000001``
    included); raises ``socket.gaierror`` for a name that does not resolve."""
    found = socket.getaddrinfo(host, port or 443, type=socket.SOCK_STREAM)
    addresses: list[Address] = []
    for _family, _type, _proto, _name, sockaddr in found:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def check_url(url: str, allow_http_loopback: bool = False) -> str | None:
    """What is wrong with sending data to ``url``, or None. A name that does not resolve
    now is accepted: it is resolved and checked again at every connection."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    try:
        addresses = resolve(host, parts.port)
    except (socket.gaierror, UnicodeError, ValueError):
        addresses = []
    loopback_only = bool(addresses) and all(_loopback(a) for a in addresses)
    if parts.scheme != "https" and not (allow_http_loopback and loopback_only):
        return "must start with https:// (deliveries carry personal data)"
    for address in addresses:
        if refused(address, allow_loopback=allow_http_loopback):
            return (
                f"resolves to {address}, a private, loopback, link-local or reserved "
                "address: give the department's public address"
            )
    return None


def _loopback(address: Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def _guarded_connect(allow_loopback: bool) -> Callable[..., socket.socket]:
    """A ``socket.create_connection`` that resolves once, refuses a bad address and
    connects to the very address it checked."""

    def connect(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        candidates = resolve(host, port)
        bad = [a for a in candidates if refused(a, allow_loopback)]
        if bad or not candidates:
            raise AddressRefused(f"{host} resolves to a refused address")
        last: OSError | None = None
        for candidate in candidates:
            try:
                return socket.create_connection((str(candidate), port), timeout, source_address)
            except OSError as error:
                last = error
        raise last or AddressRefused(host)

    return connect


class _Guarded:
    """Connections through a proxy (HTTPS_PROXY) go to the proxy, which resolves the
    department's host itself: the egress proxy is then where addresses are policed."""

    allow_loopback = False

    def _guard(self) -> None:
        self._create_connection = _guarded_connect(self.allow_loopback)

    def set_tunnel(self, *args: Any, **kwargs: Any) -> None:
        self._create_connection = socket.create_connection
        super().set_tunnel(*args, **kwargs)  # type: ignore[misc]


class _GuardedHTTP(_Guarded, http.client.HTTPConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard()


class _GuardedHTTPS(_Guarded, http.client.HTTPSConnection):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard()


def opener(
    allow_http_loopback: bool, *handlers: urllib.request.BaseHandler
) -> urllib.request.OpenerDirector:
    """A urllib opener whose connections go only to addresses ``refused`` allows (and,
    without ``allow_http_loopback``, only over https)."""
    http_class = type("GuardedHTTP", (_GuardedHTTP,), {"allow_loopback": allow_http_loopback})
    https_class = type("GuardedHTTPS", (_GuardedHTTPS,), {"allow_loopback": allow_http_loopback})

    class HTTPS(urllib.request.HTTPSHandler):
        def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            return self.do_open(https_class, req, context=self._context)  # type: ignore[arg-type,attr-defined]

    class HTTP(urllib.request.HTTPHandler):
        def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
            if not allow_http_loopback:
                raise AddressRefused("http is refused: deliveries go over https only")
            return self.do_open(http_class, req)  # type: ignore[arg-type]

    return urllib.request.build_opener(HTTP(), HTTPS(), *handlers)
