#!/usr/bin/env python3
"""A real SMTP server on 127.0.0.1 for isdown's email channel tests, built on aiosmtpd.

Usage:
    server.py [--auth USER:PASSWORD] [--starttls DIR | --tls DIR] [--reject ADDRESS]...
              [--defer ADDRESS]...

Listens on a free port of 127.0.0.1 (bound with port 0, so there is no race with other tests)
and prints the port alone on the first line of stdout. After that, every accepted message is
printed as one JSON line:

    {"mail_from": ..., "rcpt_tos": [...], "login": user or null, "tls": bool,
     "data": raw message text, "headers": [[name, decoded value], ...],
     "text": decoded text/plain part, "html": decoded text/html part}

--starttls DIR  offer STARTTLS (and AUTH only after it); --tls DIR  TLS from the first byte.
                Either one writes a throwaway CA (DIR/ca.pem) and a server certificate it signed
                for 127.0.0.1 and localhost before the port is printed.
--auth U:P      offer AUTH PLAIN/LOGIN and accept only that login (never over plain text).
--reject A      answer RCPT TO:<A> with 550; --defer A  answer it with 451.

Each line written to its stdin is answered with {"sync": true} on stdout, after every message
accepted before it (a message is printed before its 250 reply): a test that reads up to that line
knows whether anything arrived, without waiting to see. The server stops when its stdin closes,
so a test process that dies takes its server along.
Needs: aiosmtpd, cryptography (pip install aiosmtpd cryptography).
"""

import argparse
import asyncio
import datetime
import email
import email.policy
import ipaddress
import json
import os
import ssl
import sys

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--starttls", metavar="DIR")
    group.add_argument("--tls", metavar="DIR")
    parser.add_argument("--reject", metavar="ADDRESS", action="append", default=[])
    parser.add_argument("--defer", metavar="ADDRESS", action="append", default=[])
    return parser.parse_args()


def make_certificates(directory):
    """A CA and a server certificate it signed, both valid for a day; returns (cert, key) paths."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=1)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "isdown test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                ]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths = {name: os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem")}
    with open(paths["cert.pem"], "wb") as f:
        f.write(cert.public_bytes(pem))
    with open(paths["key.pem"], "wb") as f:
        f.write(
            key.private_bytes(
                pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
    # Written last: the test reads it once the port is printed.
    with open(paths["ca.pem"], "wb") as f:
        f.write(ca_cert.public_bytes(pem))
    return paths["cert.pem"], paths["key.pem"]


def server_context(directory):
    cert, key = make_certificates(directory)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


class Recorder:
    """aiosmtpd handler: refuses the configured recipients, prints every accepted message."""

    def __init__(self, reject, defer):
        self.reject = {a.lower() for a in reject}
        self.defer = {a.lower() for a in defer}

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.reject:
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address.lower() in self.defer:
            return f"451 4.3.0 <{address}>: try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        raw = envelope.original_content
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        login = getattr(session.auth_data, "login", None)
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "login": login.decode() if isinstance(login, bytes) else login,
            "tls": server.transport.get_extra_info("ssl_object") is not None,
            "data": raw.decode("utf-8", "replace"),
            "headers": [[name, str(value)] for name, value in parsed.items()],
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        print(json.dumps(record), flush=True)
        return "250 2.0.0 OK: queued"


class Authenticator:
    def __init__(self, user, password):
        self.user, self.password = user.encode(), password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == self.user
            and auth_data.password == self.password
        )
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


async def main():
    args = parse_args()
    loop = asyncio.get_running_loop()
    handler = Recorder(args.reject, args.defer)

    options = {"hostname": "isdown-test-smtp", "loop": loop}
    listen_tls = None
    if args.starttls:
        options["tls_context"] = server_context(args.starttls)
        options["require_starttls"] = True
    if args.tls:
        listen_tls = server_context(args.tls)
    if args.auth:
        user, _, password = args.auth.partition(":")
        options["authenticator"] = Authenticator(user, password)
        # AUTH over implicit TLS counts as protected; aiosmtpd only knows about STARTTLS.
        options["auth_require_tls"] = not args.tls
        options["auth_required"] = True

    server = await loop.create_server(
        lambda: SMTP(handler, **options), host="127.0.0.1", port=0, ssl=listen_tls
    )
    print(server.sockets[0].getsockname()[1], flush=True)

    # Answer every stdin line with the sync marker (on the loop, so after every message already
    # handled); serve until stdin closes.
    stdin_closed = loop.create_future()

    def sync():
        print(json.dumps({"sync": True}), flush=True)

    def watch_stdin():
        for _ in sys.stdin.buffer:
            loop.call_soon_threadsafe(sync)
        loop.call_soon_threadsafe(stdin_closed.set_result, None)

    loop.run_in_executor(None, watch_stdin)
    await stdin_closed
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
