"""``emporium serve --certfile --keyfile`` serves HTTPS, with HSTS and no server banner."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from servers import free_port

EMPORIUM = str(Path(sys.executable).parent / "emporium")


def _self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (an EC key), valid for a day: (cert file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_file, key_file


def _wait_ready(url: str, context: ssl.SSLContext, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the server exited early"
        try:
            if httpx.get(url, timeout=1, verify=context).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not become ready")


@pytest.mark.slow
def test_serve_over_tls(tmp_path: Path) -> None:
    """A client trusting the certificate gets HTTPS answers with HSTS and without a
    ``server`` header; plain HTTP on that port gets no answer from the API."""
    cert_file, key_file = _self_signed(tmp_path)
    context = ssl.create_default_context(cafile=str(cert_file))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("EMPORIUM_")}
    proc = subprocess.Popen(
        [
            EMPORIUM,
            "serve",
            "--port",
            str(port),
            "--certfile",
            str(cert_file),
            "--keyfile",
            str(key_file),
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base}/readyz", context, proc)
        response = httpx.get(f"{base}/api/v1/products", verify=context)
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert "server" not in response.headers
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/api/v1/products", timeout=3)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_certfile_without_keyfile_is_refused(tmp_path: Path) -> None:
    """Half a TLS configuration is a usage error, not a silent fallback to plain HTTP."""
    cert_file, _ = _self_signed(tmp_path)
    result = subprocess.run(
        [EMPORIUM, "serve", "--certfile", str(cert_file)],
        cwd=tmp_path,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 2
    assert b"--certfile and --keyfile go together" in result.stderr
