"""Test support (no tests here): a throwaway PKI made with the openssl command line.

make_pki(dir) writes a CA, a server certificate for 127.0.0.1 and localhost (SAN IP and DNS), a
client certificate signed by the same CA, and a client certificate signed by a second, unrelated
CA (which a server requiring client certificates must refuse). EC P-256 keys: fast to make.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess


@dataclasses.dataclass(frozen=True)
class Pki:
    ca: str  # CA certificate (PEM)
    server_cert: str
    server_key: str
    client_cert: str
    client_key: str
    rogue_client_cert: str  # signed by another CA
    rogue_client_key: str


def have_openssl() -> bool:
    return shutil.which("openssl") is not None


def _run(*args: str, cwd: str) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.strip()}")


def _key(name: str, cwd: str) -> None:
    _run("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", name, cwd=cwd)


def _ca(name: str, cwd: str) -> None:
    _key(f"{name}.key", cwd)
    _run(
        "req", "-x509", "-new", "-key", f"{name}.key", "-out", f"{name}.pem", "-days", "2",
        "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        cwd=cwd,
    )


def _leaf(name: str, ca: str, extensions: str, cwd: str) -> None:
    _key(f"{name}.key", cwd)
    _run("req", "-new", "-key", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=cwd)
    with open(os.path.join(cwd, f"{name}.ext"), "w") as f:
        f.write(extensions)
    _run(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
        cwd=cwd,
    )


def make_pki(directory: str) -> Pki:
    _ca("strata-test-ca", directory)
    _ca("rogue-ca", directory)
    _leaf(
        "server",
        "strata-test-ca",
        "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n"
        "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n",
        directory,
    )
    client_ext = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n"
    _leaf("client", "strata-test-ca", client_ext, directory)
    _leaf("rogue-client", "rogue-ca", client_ext, directory)
    p = lambda n: os.path.join(directory, n)  # noqa: E731
    return Pki(
        ca=p("strata-test-ca.pem"),
        server_cert=p("server.pem"),
        server_key=p("server.key"),
        client_cert=p("client.pem"),
        client_key=p("client.key"),
        rogue_client_cert=p("rogue-client.pem"),
        rogue_client_key=p("rogue-client.key"),
    )
