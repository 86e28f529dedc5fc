import asyncio
import ipaddress
import ssl
import stat

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from santamon.certs import split_hosts, write_self_signed


def _load(tmp_path):
    cert = x509.load_pem_x509_certificate((tmp_path / "cert.pem").read_bytes())
    key = serialization.load_pem_private_key((tmp_path / "key.pem").read_bytes(), None)
    return cert, key


def test_writes_cert_and_private_key_with_defaults(tmp_path):
    result = write_self_signed(tmp_path)
    cert, key = _load(tmp_path)

    assert stat.S_IMODE((tmp_path / "key.pem").stat().st_mode) == 0o600
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    assert key.public_key() == cert.public_key()
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc).days
    assert 800 <= days <= 826
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert result.fingerprint_sha256 == ":".join(
        f"{b:02X}" for b in cert.fingerprint(hashes.SHA256())
    )
    assert len(result.fingerprint_sha256) == 32 * 3 - 1


def test_given_hosts_become_sans_and_the_first_name_the_subject(tmp_path):
    write_self_signed(tmp_path, ["santamon.corp.example", "10.1.2.3", "[fd00::5]", "LOCALHOST"])
    cert, _ = _load(tmp_path)
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "santamon.corp.example"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == [
        "127.0.0.1",
        "::1",
        "10.1.2.3",
        "fd00::5",
    ]
    cn = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value
    assert cn == "santamon.corp.example"


def test_refuses_to_overwrite_unless_asked(tmp_path):
    first = write_self_signed(tmp_path)
    with pytest.raises(FileExistsError):
        write_self_signed(tmp_path)
    second = write_self_signed(tmp_path, overwrite=True)
    assert second.fingerprint_sha256 != first.fingerprint_sha256
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cert.pem", "key.pem"]


@pytest.mark.parametrize("bad", ["exa mple.com", "-bad.example", "a..b", "x" * 64 + ".com"])
def test_rejects_hosts_that_are_neither_names_nor_addresses(bad):
    with pytest.raises(ValueError):
        split_hosts([bad])


async def test_a_client_that_trusts_the_cert_completes_a_verified_handshake(tmp_path):
    write_self_signed(tmp_path, ["santamon.test"])
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")

    async def handle(reader, writer):
        writer.write(b"ok")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.sockets[0].getsockname()[1]
    try:
        for name in ("localhost", "santamon.test"):
            client_ctx = ssl.create_default_context(cafile=tmp_path / "cert.pem")
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname=name
            )
            assert await reader.read() == b"ok"
            writer.close()
        client_ctx = ssl.create_default_context(cafile=tmp_path / "cert.pem")
        with pytest.raises(ssl.SSLCertVerificationError):
            await asyncio.open_connection(
                "127.0.0.1", port, ssl=client_ctx, server_hostname="other.test"
            )
    finally:
        server.close()
        await server.wait_closed()
