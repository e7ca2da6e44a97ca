"""Brokers as production runs them: dynamic-security accounts, anonymous clients refused,
optionally a TLS-only listener with a CA the test makes itself."""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from app.broker import Broker, TlsFiles, free_port
from app.brokerauth import DynsecClient


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM,
                             serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def make_pki(directory: Path) -> TlsFiles:
    """A throw-away CA and a server certificate for 127.0.0.1 / localhost."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder()
          .subject_name(_name("plowshare test CA")).issuer_name(_name("plowshare test CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(hours=1))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(
              digital_signature=False, content_commitment=False, key_encipherment=False,
              data_encipherment=False, key_agreement=False, key_cert_sign=True,
              crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"),
                x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TlsFiles(cafile=directory / "ca.pem", certfile=directory / "server.pem",
                     keyfile=directory / "server.key")
    files.cafile.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.certfile.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.keyfile.write_bytes(_key_pem(key))
    files.keyfile.chmod(0o600)
    return files


ADMIN_USER = "plowshare-admin"


def _start(broker: Broker) -> Broker:
    try:
        broker.start()
    except RuntimeError as exc:
        pytest.fail(f"cannot start Mosquitto with the dynamic-security plugin: {exc}",
                    pytrace=False)
    return broker


@pytest.fixture
def admin_password() -> str:
    return secrets.token_urlsafe(18)


@pytest.fixture
def secure_broker(tmp_path: Path, admin_password: str) -> Iterator[Broker]:
    """Mosquitto with plowshare's dynamic-security set-up; only the admin exists."""
    b = _start(Broker(port=free_port(), data_dir=tmp_path / "mosquitto",
                      dynsec_admin=(ADMIN_USER, admin_password),
                      message_size_limit=64 * 1024))
    yield b
    b.stop()


@pytest.fixture
def pki(tmp_path: Path) -> TlsFiles:
    return make_pki(tmp_path / "pki")


@pytest.fixture
def tls_broker(tmp_path: Path, admin_password: str, pki: TlsFiles) -> Iterator[Broker]:
    """As secure_broker, but its only listener speaks TLS."""
    b = _start(Broker(port=free_port(), data_dir=tmp_path / "mosquitto-tls",
                      dynsec_admin=(ADMIN_USER, admin_password), tls=pki))
    yield b
    b.stop()


@pytest.fixture
def admin(secure_broker: Broker, admin_password: str) -> Iterator[DynsecClient]:
    with DynsecClient("127.0.0.1", secure_broker.port, ADMIN_USER, admin_password) as c:
        yield c
