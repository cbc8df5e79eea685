"""Syslog sink: RFC 5424 messages over UDP (RFC 5426) or TCP with octet-counting framing
(RFC 6587 section 3.4.1: ``MSG-LEN SP SYSLOG-MSG``).

One message per alert::

    <PRI>1 TIMESTAMP HOSTNAME rarebird - MSGID [rarebird@32473 id="..." ...] REASON

``PRI`` = facility * 8 + severity, the severity from the alert's (low: 5 notice, medium:
4 warning, high: 3 error, critical: 2 critical); ``TIMESTAMP`` the alert's ``@timestamp`` (when
the rule made it); ``MSGID`` ``alert`` for a new alert, ``alert-update`` for a changed one; the
structured data element uses the documentation enterprise number 32473 (RFC 5612) and carries the
alert id, rule, anomaly time, user, host, process, score, severity, status and duplicate count;
``MSG`` is the alert's reason text (``msg="json"``: the whole alert document, for TCP).
Control characters from the events (user names, arguments, hosts) are shown as escapes
(:mod:`rarebird.sinks.escape`): a message never carries a raw escape sequence or line break.
"""

from __future__ import annotations

import fcntl
import select
import socket
import struct
import termios
import time
from collections.abc import Sequence

from rarebird.alerts import Alert
from rarebird.sinks.base import SinkError
from rarebird.sinks.escape import escape_controls, json_bytes

FACILITIES = {
    "kern": 0, "user": 1, "mail": 2, "daemon": 3, "auth": 4, "syslog": 5, "lpr": 6, "news": 7,
    "uucp": 8, "cron": 9, "authpriv": 10, "ftp": 11, "ntp": 12, "audit": 13, "alert": 14,
    "clock": 15, "local0": 16, "local1": 17, "local2": 18, "local3": 19, "local4": 20,
    "local5": 21, "local6": 22, "local7": 23,
}  # fmt: skip
SEVERITY_CODES = {"critical": 2, "high": 3, "medium": 4, "low": 5}
SD_ID = "rarebird@32473"


def _sd_escape(value: str) -> str:
    # control characters first (that also doubles backslashes), then RFC 5424's three
    return escape_controls(value).replace('"', '\\"').replace("]", "\\]")


def _header_field(value: str, limit: int) -> str:
    cleaned = "".join(ch for ch in value if 33 <= ord(ch) <= 126)[:limit]
    return cleaned or "-"


def format_message(
    alert: Alert, *, facility: int = 4, hostname: str = "-", app_name: str = "rarebird",
    msg: str = "reason",
) -> bytes:  # fmt: skip
    """One RFC 5424 message for ``alert``."""
    pri = facility * 8 + SEVERITY_CODES.get(alert.severity, 5)
    msgid = "alert" if alert.revision == 0 else "alert-update"
    params = [
        ("id", alert.id),
        ("rule_id", str(alert.doc.get("kibana.alert.rule.rule_id", ""))),
        ("original_time", str(alert.doc.get("kibana.alert.original_time", ""))),
        ("user", ",".join(alert.values("user.name"))),
        ("host", ",".join(alert.values("host.name"))),
        ("process", ",".join(alert.values("process.name"))),
        ("score", f"{alert.record_score:g}"),
        ("severity", alert.severity),
        ("status", alert.workflow_status),
        ("duplicates", str(alert.suppressed_count)),
    ]
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_escape(v)}"' for k, v in params) + "]"
    text = (
        json_bytes(alert.doc).decode()
        if msg == "json"
        else escape_controls(str(alert.doc.get("kibana.alert.reason", "")))
    )
    header = (
        f"<{pri}>1 {alert.doc['@timestamp']} {_header_field(hostname, 255)} "
        f"{_header_field(app_name, 48)} - {msgid}"
    )
    return f"{header} {sd} {text}".encode()


class SyslogSink:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        protocol: str = "udp",
        facility: str | int = "auth",
        hostname: str | None = None,
        app_name: str = "rarebird",
        msg: str = "reason",
        timeout: float = 10.0,
    ) -> None:
        if protocol not in ("udp", "tcp"):
            raise SinkError(f"syslog protocol must be udp or tcp, not {protocol!r}")
        if isinstance(facility, str):
            if facility not in FACILITIES:
                raise SinkError(f"unknown syslog facility {facility!r}")
            facility = FACILITIES[facility]
        self.host, self.port, self.protocol = host, port, protocol
        self.facility = facility
        self.hostname = hostname if hostname is not None else socket.gethostname()
        self.app_name = app_name
        self.msg = msg
        self.timeout = timeout
        self._sock: socket.socket | None = None

    @property
    def name(self) -> str:
        return f"syslog+{self.protocol}://{self.host}:{self.port}"

    def _connect(self) -> socket.socket:
        if self._sock is None:
            try:
                if self.protocol == "udp":
                    info = socket.getaddrinfo(self.host, self.port, type=socket.SOCK_DGRAM)[0]
                    sock = socket.socket(info[0], socket.SOCK_DGRAM)
                    sock.connect(info[4])
                else:
                    sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            except OSError as exc:
                raise SinkError(f"{self.name}: cannot connect: {exc}") from None
            self._sock = sock
        return self._sock

    def write(self, alerts: Sequence[Alert]) -> None:
        """Send ``alerts``. Over TCP, a connection the receiver closed (it restarted) is
        reopened before sending, and ``write`` returns only once the receiver's TCP stack has
        acknowledged every byte (the socket's unacknowledged queue is empty); otherwise it
        raises, and the delivery sends the batch again -- at least once, never lost to a send
        buffer that nobody was reading."""
        if self.protocol == "udp":
            for n, alert in enumerate(alerts):
                try:
                    self._connect().send(self._message(alert))
                except SinkError as exc:
                    raise SinkError(str(exc), delivered=n) from None
                except OSError as exc:
                    self._close_socket()
                    raise SinkError(f"{self.name}: cannot send: {exc}", delivered=n) from None
            return
        data = b"".join(self._frame(a) for a in alerts)
        try:
            sock = self._connect()
            if _peer_closed(sock):
                self._close_socket()
                sock = self._connect()
            sock.sendall(data)
            self._wait_acknowledged(sock)
        except SinkError:
            self._close_socket()
            raise
        except OSError as exc:
            self._close_socket()
            raise SinkError(f"{self.name}: cannot send: {exc}") from None

    def _message(self, alert: Alert) -> bytes:
        return format_message(alert, facility=self.facility, hostname=self.hostname,
                              app_name=self.app_name, msg=self.msg)  # fmt: skip

    def _frame(self, alert: Alert) -> bytes:
        data = self._message(alert)
        return str(len(data)).encode() + b" " + data

    def _wait_acknowledged(self, sock: socket.socket) -> None:
        deadline = time.monotonic() + self.timeout
        while True:
            left = _unacknowledged(sock)
            if left is None or left == 0:
                return
            if _peer_closed(sock):
                raise OSError(f"the receiver closed the connection with {left} bytes unread")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{left} bytes not acknowledged after {self.timeout:g}s")
            time.sleep(0.005)

    def _close_socket(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def close(self) -> None:
        self._close_socket()


def _unacknowledged(sock: socket.socket) -> int | None:
    """Bytes sent but not yet acknowledged by the peer (Linux ``SIOCOUTQ``); None if unknown."""
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    except OSError:
        return None
    return int(struct.unpack("i", raw)[0])


def _peer_closed(sock: socket.socket) -> bool:
    """True when the receiver closed the connection (a syslog receiver never sends data)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        if not readable:
            return False
        return sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True
