"""IdP-side cost of one SAML SSO answer: decode + check the request, build, sign, encode the response.

Prints the median (and p90) per answer, in milliseconds, for:
- this IdP (in-process libxmlsec1): unsigned Redirect request, signed Redirect request, signed POST request,
  and an encrypted assertion (AES-256-GCM / RSA-OAEP);
- stock pysaml2 (``Server.parse_authn_request`` + ``create_authn_response``) with the ``xmlsec1`` program;
- the same pysaml2 server with our ``XmlSecBackend`` installed on its SecurityContext.

The database is not involved (SP lookup and replay cache are in memory here; the HTTP benchmark covers
them). Each line gives the wall-clock median and the CPU time of the measuring thread (the figure to compare
on a shared machine). Bounded: a few hundred iterations per line, at RSA-2048 (what federations use, the
default of ``keys.rsa_bits``) and RSA-3072. Run: ``python bench/saml/bench_answer.py [--bits 2048,3072]``.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402
from lxml import etree  # noqa: E402

from idp.core.identity import Attr  # noqa: E402
from idp.keystore import RSA_CERT_FILE, RSA_KEY_FILE, self_signed_certificate  # noqa: E402
from idp.saml import binding, checks, registry  # noqa: E402
from idp.saml.attributes import saml_attributes  # noqa: E402
from idp.saml.config import SamlConfig  # noqa: E402
from idp.saml.crypto import XmlSecBackend  # noqa: E402
from idp.saml.keys import load_material  # noqa: E402
from idp.saml.responses import AnswerSpec, build_response, encode_post  # noqa: E402
from tests.protocols.saml import forge  # noqa: E402

BASE = "https://idp.test"
SP = "https://sp.test/metadata"
ACS = "https://sp.test/acs"
RELEASED = {Attr.SN: ["Dupont"], Attr.GIVEN_NAME: ["Marie"], Attr.FR_EDU_CT_ID: ["a1b2c3d4e5"],
            Attr.AFFILIATION: ["resp2d"], Attr.ELEVE_UAI: ["0690026D"], Attr.ELEVE_NIVEAU: ["4EME"],
            Attr.REF_ID: ["k3j2h4g5"], Attr.VECTEUR: ["2|DUPONT|Marie|123456|0690026D"],
            Attr.URL_RETOUR: [f"{BASE}/logout"], Attr.DATE_CONNEXION: ["2026-09-01T08:00:00Z"]}


def keypair(bits: int, name: str) -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    return pem, self_signed_certificate(key, name)


def sp_metadata(cert: bytes, signed_requests: bool) -> bytes:
    body = "".join(cert.decode().strip().splitlines()[1:-1])
    return f"""<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{SP}">
<md:SPSSODescriptor AuthnRequestsSigned="{str(signed_requests).lower()}" WantAssertionsSigned="true"
 protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
<md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
<ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:KeyDescriptor use="encryption"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data>
<ds:X509Certificate>{body}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>
<md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="{ACS}" index="1"/>
</md:SPSSODescriptor></md:EntityDescriptor>""".encode()


def ours(directory: Path, sp_key: bytes, sp_cert: bytes, iterations: int) -> None:
    config = SamlConfig(base_url=BASE)
    backend = XmlSecBackend()
    material = load_material(directory)
    now = dt.datetime.now(dt.UTC)
    metadata = {}
    for signed in (False, True):
        [md] = registry.parse_metadata(sp_metadata(sp_cert, signed), now=now)
        md.signing_keys.extend(backend.keys.certificate(c) for c in md.signing_certs)
        metadata[signed] = md
    seen: set[str] = set()

    def checker(signed: bool) -> checks.AuthnRequestChecker:
        def consume(key: str, _expires: dt.datetime) -> bool:
            if key in seen:
                return False
            seen.add(key)
            return True
        return checks.AuthnRequestChecker(config, lambda e: metadata[signed] if e == SP else None, consume,
                                          allows_unsigned=lambda e: not signed)  # unsigned: an exempted SP

    def request(i: int, destination: str) -> bytes:
        return etree.tostring(forge.authn_request(SP, now, request_id=f"_r{i}-{time.monotonic_ns()}",
                                                  destination=destination, acs=ACS))

    def answer(checked: checks.CheckedAuthnRequest, encrypt: bool) -> str:
        spec = AnswerSpec(sp_entity_id=SP, acs_url=checked.acs_url, in_response_to=checked.request_id,
                          name_id="q3k4j5h6g7f8d9s0a1z2x3c4v5b6n7m8", name_id_format=(
                              "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"),
                          session_index="abc.def", authn_instant=now,
                          authn_class="urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                          attributes=saml_attributes(RELEASED, False),
                          encryption_cert=metadata[True].encryption_certs[0] if encrypt else None)
        return encode_post(build_response(config, material, backend, spec, now))

    def redirect_case(signed: bool, encrypt: bool = False) -> Callable[[int], tuple[float, float]]:
        def run(i: int) -> tuple[float, float]:
            query = forge.redirect_query(request(i, forge.SSO_REDIRECT), relay_state="https://sp.test/page",
                                         key=sp_key if signed else None).encode()
            started, cpu = time.perf_counter(), time.thread_time()
            inbound = binding.decode_redirect(query, "SAMLRequest", config)
            checked, _ = checker(signed).check(inbound, f"{BASE}/saml/sso/redirect", now)
            answer(checked, encrypt)
            return time.perf_counter() - started, time.thread_time() - cpu
        return run

    def post_signed(i: int) -> tuple[float, float]:
        body = base64.b64encode(forge.sign(etree.fromstring(request(i, forge.SSO_POST)), sp_key, sp_cert)).decode()
        started, cpu = time.perf_counter(), time.thread_time()
        inbound = binding.decode_post(body, None)
        checked, _ = checker(True).check(inbound, f"{BASE}/saml/sso/post", now)
        answer(checked, False)
        return time.perf_counter() - started, time.thread_time() - cpu

    print("this IdP (in-process libxmlsec1, every check on; request making by the SP is not timed):")
    for label, case in (("unsigned Redirect request -> signed assertion", redirect_case(False)),
                        ("signed Redirect request -> signed assertion", redirect_case(True)),
                        ("signed POST request (enveloped) -> signed assertion", post_signed),
                        ("signed Redirect request -> signed + encrypted assertion", redirect_case(True, True))):
        measure_inner(label, case, iterations)


def measure_inner(label: str, run: Callable[[int], tuple[float, float]], iterations: int) -> float:
    """Print the medians of ``run``, which returns the wall and thread CPU seconds of the measured part only.

    The CPU time of the measuring thread does not count the time other processes take the core, so it is the
    figure to compare on a shared machine; on a quiet one both agree.
    """
    for i in range(min(20, iterations)):
        run(i)
    samples = [run(i + 1000) for i in range(iterations)]
    wall = sorted(w * 1000 for w, _ in samples)
    cpu = sorted(c * 1000 for _, c in samples)
    median = statistics.median(wall)
    print(f"  {label:<58} median {median:6.2f} ms (CPU {statistics.median(cpu):5.2f})   "
          f"p90 {wall[int(len(wall) * 0.9)]:6.2f} ms  (n={iterations})")
    return median


def stock_pysaml2(directory: Path, sp_key: bytes, sp_cert: bytes, iterations: int, in_process: bool) -> None:
    from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
    from saml2.assertion import Policy
    from saml2.config import IdPConfig
    from saml2.saml import NAME_FORMAT_BASIC, NAMEID_FORMAT_PERSISTENT, NameID
    from saml2.server import Server

    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        print("  (xmlsec1 program not installed: apt-get install xmlsec1)")
        return
    conf = IdPConfig().load({
        "entityid": f"{BASE}/saml/metadata", "key_file": str(directory / RSA_KEY_FILE),
        "cert_file": str(directory / RSA_CERT_FILE), "xmlsec_binary": xmlsec1, "accepted_time_diff": 180,
        "metadata": {"inline": [sp_metadata(sp_cert, True).decode()]},
        "service": {"idp": {"endpoints": {"single_sign_on_service": [(f"{BASE}/saml/sso/redirect",
                                                                      BINDING_HTTP_REDIRECT)]},
                            "want_authn_requests_signed": True}},
    })
    server = Server(config=conf)
    if in_process:
        server.sec.crypto = XmlSecBackend()
    policy = Policy({"default": {"lifetime": {"minutes": 5}, "name_form": NAME_FORMAT_BASIC,
                                 "attribute_restrictions": None, "entity_categories": []}})
    identity = {a.value: v for a, v in RELEASED.items()}
    now = dt.datetime.now(dt.UTC)

    def run(i: int) -> tuple[float, float]:
        xml = etree.tostring(forge.authn_request(SP, now, request_id=f"_p{i}-{time.monotonic_ns()}",
                                                 destination=f"{BASE}/saml/sso/redirect", acs=ACS))
        query = forge.redirect_query(xml, relay_state="https://sp.test/page", key=sp_key)
        args = {k: v[0] for k, v in parse_qs(query).items()}
        started, cpu = time.perf_counter(), time.thread_time()
        request = server.parse_authn_request(args["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                             relay_state=args["RelayState"], sigalg=args["SigAlg"],
                                             signature=args["Signature"])
        message = request.message
        response = server.create_authn_response(
            identity, message.id, ACS, SP, name_id=NameID(format=NAMEID_FORMAT_PERSISTENT, text="q3k4j5h6g7f8"),
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                   "authn_instant": int(time.time())},
            sign_assertion=True, sign_response=False, release_policy=policy,
            sign_alg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
            digest_alg="http://www.w3.org/2001/04/xmlenc#sha256")
        server.apply_binding(BINDING_HTTP_POST, str(response), ACS, "https://sp.test/page", response=True)
        server.session_db = type(server.session_db)()  # pysaml2 keeps every assertion otherwise
        return time.perf_counter() - started, time.thread_time() - cpu

    label = "pysaml2 Server + our XmlSecBackend" if in_process else "stock pysaml2 Server + xmlsec1 program"
    measure_inner(f"{label}: signed Redirect -> signed assertion", run, iterations)


def rsa_reference(key_pem: bytes) -> float:
    """Median time of a bare RSA signature: the floor of any signed answer, and a gauge of machine load."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    key = serialization.load_pem_private_key(key_pem, password=None)
    samples = []
    for _ in range(50):
        started = time.perf_counter()
        key.sign(b"x" * 64, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[union-attr]
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bits", default="2048,3072",
                        help="IdP signing key sizes, comma-separated (pysaml2 is compared at the first one)")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--no-pysaml2", action="store_true", help="skip the pysaml2 comparison")
    args = parser.parse_args()
    sp_key, sp_cert = keypair(2048, "sp.test")
    for position, bits in enumerate(int(b) for b in args.bits.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            directory = Path(tmp)
            key, cert = keypair(bits, "idp.test")
            (directory / RSA_KEY_FILE).write_bytes(key)
            (directory / RSA_CERT_FILE).write_bytes(cert)
            print(f"IdP signing key RSA-{bits}, SP key RSA-2048, one core, median of {args.iterations}")
            print(f"machine reference: one bare RSA-{bits} PKCS#1 signature (cryptography) takes "
                  f"{rsa_reference(key):.2f} ms now; load average {os.getloadavg()[0]:.1f}\n")
            ours(directory, sp_key, sp_cert, args.iterations)
            if position == 0 and not args.no_pysaml2:
                print("\npysaml2 for comparison (same request, same attributes, rsa-sha256):")
                stock_pysaml2(directory, sp_key, sp_cert, max(30, args.iterations // 10), in_process=False)
                stock_pysaml2(directory, sp_key, sp_cert, args.iterations, in_process=True)
            print()


if __name__ == "__main__":
    main()
