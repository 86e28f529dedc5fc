"""Self-signed TLS certificates for `santamon gen-cert`.

The agent requires HTTPS for any non-loopback endpoint and offers `tls_skip_verify` for
self-signed certificates; an operator who would rather pin than skip verification needs the
certificate's SHA-256 fingerprint, which is why it is returned and printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
# 825 days is the longest validity macOS accepts for a TLS server certificate it is asked
# to trust, and the agent runs on macOS.
DEFAULT_DAYS = 825
CERT_FILE = "cert.pem"
KEY_FILE = "key.pem"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class GeneratedCert:
    cert_path: Path
    key_path: Path
    fingerprint_sha256: str
    not_after: dt.datetime
    dns_names: tuple[str, ...]
    ip_addresses: tuple[IPAddress, ...]


def split_hosts(hosts: Iterable[str]) -> tuple[tuple[str, ...], tuple[IPAddress, ...]]:
    """Sort host arguments into DNS names and IP addresses, defaults first, without repeats."""
    names: dict[str, None] = {}
    ips: dict[IPAddress, None] = {}
    for raw in (*DEFAULT_HOSTS, *hosts):
        host = raw.strip().strip("[]")
        if not host:
            continue
        try:
            ips[ipaddress.ip_address(host)] = None
            continue
        except ValueError:
            pass
        name = host.lower().rstrip(".")
        if not _valid_dns_name(name):
            raise ValueError(f"not a DNS name or IP address: {raw!r}")
        names[name] = None
    return tuple(names), tuple(ips)


def _valid_dns_name(name: str) -> bool:
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    # A leading "*" label is a wildcard; every other label is LDH, 1-63 characters.
    if labels[0] == "*" and len(labels) > 1:
        labels = labels[1:]
    return all(
        0 < len(label) <= 63
        and label[0] != "-"
        and label[-1] != "-"
        and all(c.isascii() and (c.isalnum() or c == "-") for c in label)
        for label in labels
    )


def load_certificate(path: str | os.PathLike[str]) -> x509.Certificate:
    return x509.load_pem_x509_certificate(Path(path).read_bytes())


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 fingerprint in the colon-separated form `openssl x509 -fingerprint` prints."""
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def build_self_signed(
    hosts: Iterable[str] = (),
    *,
    days: int = DEFAULT_DAYS,
    now: dt.datetime | None = None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    if days < 1:
        raise ValueError("days must be at least 1")
    names, ips = split_hosts(hosts)
    key = ec.generate_private_key(ec.SECP256R1())
    now = now or dt.datetime.now(dt.UTC)
    # The first name the operator gave is the subject; "localhost" only when none was given.
    extra_names = [n for n in names if n not in DEFAULT_HOSTS]
    common_name = (extra_names or list(names) or ["localhost"])[0]
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Santamon"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    sans += [x509.IPAddress(ip) for ip in ips]
    public_key = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public_key)
        .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
        # Backdated a little so a client whose clock is slightly behind accepts it.
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def write_self_signed(
    out_dir: str | os.PathLike[str],
    hosts: Iterable[str] = (),
    *,
    days: int = DEFAULT_DAYS,
    overwrite: bool = False,
) -> GeneratedCert:
    """Write `cert.pem` and `key.pem` (mode 0600) into out_dir and describe the result.

    Refuses to replace existing files unless `overwrite`, because replacing a certificate
    that agents have pinned breaks them.
    """
    out = Path(out_dir)
    cert_path, key_path = out / CERT_FILE, out / KEY_FILE
    if not overwrite:
        existing = [str(p) for p in (cert_path, key_path) if p.exists()]
        if existing:
            raise FileExistsError(f"refusing to overwrite {', '.join(existing)}")
    cert, key = build_self_signed(hosts, days=days)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(key_path, key_pem, 0o600)
    _write_atomic(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    names, ips = split_hosts(hosts)
    return GeneratedCert(
        cert_path=cert_path,
        key_path=key_path,
        fingerprint_sha256=fingerprint(cert),
        not_after=cert.not_valid_after_utc,
        dns_names=names,
        ip_addresses=ips,
    )


def _write_atomic(path: Path, data: bytes, mode: int) -> None:
    # mkstemp creates the file 0600, so the key is never readable by others, not even briefly.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
