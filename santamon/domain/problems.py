"""Why an agent fails to reach this service, as the operator rolling out agents sees it.

Four kinds of trouble, counted per client address and hour: a TLS handshake that failed, an
agent key that is wrong or revoked, a bound key used for another host (key misuse), and a
signal whose oversized context was stored shortened. Also how a failed TLS handshake is
described: OpenSSL's reason codes, grouped into what an operator can act on.
"""

from __future__ import annotations

from typing import Literal, get_args

from .. import timeutil

Kind = Literal["tls_failure", "wrong_key", "key_misuse", "context_shortened"]
TLS_FAILURE, WRONG_KEY, KEY_MISUSE, CONTEXT_SHORTENED = KINDS = get_args(Kind)

# Kept this long (the console shows the last 24 hours); the retention job prunes the rest.
RETENTION_SECONDS = 7 * 86_400
# Where the counts of addresses beyond what one hour may hold (a flood from many
# addresses) go, so that nothing counted is lost and the database stays small.
OTHER_CLIENTS = "(other addresses)"
MAX_DETAIL_CHARS = 300

# OpenSSL's reason for a failed server-side handshake -> (metric label, what it means).
_UNTRUSTED = ("untrusted_certificate",
              "the client does not trust this server's certificate (install it, or the CA "
              "that issued it, on the Mac; or set tls_skip_verify and compare the fingerprint)")
TLS_REASONS: dict[str, tuple[str, str]] = {
    "TLSV1_ALERT_UNKNOWN_CA": _UNTRUSTED,
    "SSLV3_ALERT_BAD_CERTIFICATE": _UNTRUSTED,
    "SSLV3_ALERT_CERTIFICATE_UNKNOWN": _UNTRUSTED,
    "SSLV3_ALERT_CERTIFICATE_EXPIRED": _UNTRUSTED,
    "SSLV3_ALERT_UNSUPPORTED_CERTIFICATE": _UNTRUSTED,
    "SSLV3_ALERT_CERTIFICATE_REVOKED": _UNTRUSTED,
    "HTTP_REQUEST": ("http_on_https", "plain HTTP sent to the HTTPS port (use https://)"),
    "HTTPS_PROXY_REQUEST": ("http_on_https", "a proxy CONNECT sent to the HTTPS port"),
    "UNSUPPORTED_PROTOCOL": ("protocol_version", "the client offers only TLS versions older "
                                                 "than 1.2"),
    "VERSION_TOO_LOW": ("protocol_version", "the client offers only TLS versions older than "
                                            "1.2"),
    "TLSV1_ALERT_PROTOCOL_VERSION": ("protocol_version", "no TLS version both sides accept"),
    "NO_SHARED_CIPHER": ("no_shared_cipher", "no cipher both sides accept"),
    "WRONG_VERSION_NUMBER": ("not_tls", "what the client sent is not TLS"),
    "UNKNOWN_PROTOCOL": ("not_tls", "what the client sent is not TLS"),
    "RECORD_LAYER_FAILURE": ("not_tls", "what the client sent is not TLS"),
    "PACKET_LENGTH_TOO_LONG": ("not_tls", "what the client sent is not TLS"),
}
TLS_OTHER = "other"


def tls_failure(reason: str | None) -> tuple[str, str]:
    """(metric label, description) of a failed handshake, from OpenSSL's reason code."""
    known = TLS_REASONS.get(reason or "")
    if known is not None:
        return known
    return TLS_OTHER, f"TLS handshake failed ({(reason or 'unknown reason').lower()})"


def hour_of(ns: int) -> str:
    """The start of the hour `ns` falls in, in stored form: the unit problems are counted in."""
    return timeutil.format_utc(ns - ns % timeutil.HOUR_NS)


def clean_detail(text: str) -> str:
    """A detail fit to store and show: one line, no control characters (PostgreSQL cannot
    store NUL), and short."""
    cleaned = "".join(char if char.isprintable() else "\ufffd" for char in text)
    if len(cleaned) > MAX_DETAIL_CHARS:
        cleaned = cleaned[:MAX_DETAIL_CHARS - 1] + "…"
    return cleaned
