"""AI provenance in every exported image: the IPTC digital source type in XMP, and a signed C2PA manifest.

Meta and Google read IPTC's `DigitalSourceType` (XMP) and C2PA Content Credentials to label
AI-generated images, and the EU AI Act's Article 50 asks for machine-readable marking from August
2026. Every PNG an export writes therefore carries:

- XMP with `Iptc4xmpExt:DigitalSourceType` = trainedAlgorithmicMedia, inserted as a fixed iTXt
  chunk without re-encoding the pixels, so marking the same render twice gives the same bytes;
- a C2PA manifest (c2pa-python): a `c2pa.created` action with that source type and adgen as the
  software agent, adgen and its version as the claim generator, the models, adapters and seeds in an
  `org.adgen.generation` assertion, and the logo (and a product photo, when there is one) as
  ingredients. A C2PA signature carries a fresh random claim id and timestamp, so signed files
  differ between exports; the pixels and the XMP do not.

The manifest is signed with the certificate chain and key in settings (ADGEN_C2PA_CERT,
ADGEN_C2PA_KEY). Without them adgen signs with a local test chain it makes under ADGEN_HOME (`adgen
init` makes it; the first export does too): such manifests validate, but no one trusts them.
"""

import datetime
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

from adgen import __version__
from adgen.settings import Settings

TRAINED_ALGORITHMIC_MEDIA = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
XMP_KEYWORD = b"XML:com.adobe.xmp"
XMP_PACKET = (
    '<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>'
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
    '<rdf:Description rdf:about="" xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
    ' xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
    f' Iptc4xmpExt:DigitalSourceType="{TRAINED_ALGORITHMIC_MEDIA}" xmp:CreatorTool="adgen {__version__}"/>'
    "</rdf:RDF></x:xmpmeta>"
    '<?xpacket end="r"?>'
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TEST_CHAIN_DIR = "c2pa-test"
TEST_NAME = "adgen local test certificate (not trusted)"


class ProvenanceError(ValueError):
    """Signing cannot happen as configured; the message names the setting."""


# ----- XMP -----

def _chunks(png: bytes):
    if not png.startswith(PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos = len(PNG_SIGNATURE)
    while pos < len(png):
        (length,) = struct.unpack(">I", png[pos:pos + 4])
        kind = png[pos + 4:pos + 8]
        yield kind, png[pos:pos + 12 + length], png[pos + 8:pos + 8 + length]
        pos += 12 + length


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def with_xmp(png: bytes) -> bytes:
    """The PNG with adgen's XMP packet as its only XMP chunk, placed before the image data. Pure
    function of the input bytes: a re-render that matches still matches after marking."""
    itxt = _chunk(b"iTXt", XMP_KEYWORD + b"\x00\x00\x00\x00\x00" + XMP_PACKET.encode())
    out, placed = [PNG_SIGNATURE], False
    for kind, raw, data in _chunks(png):
        if kind in (b"iTXt", b"tEXt", b"zTXt") and data.startswith(XMP_KEYWORD + b"\x00"):
            continue
        if kind == b"IDAT" and not placed:
            out.append(itxt)
            placed = True
        out.append(raw)
    return b"".join(out)


def without_manifest(png: bytes) -> bytes:
    """The PNG without its C2PA manifest store (the caBX chunk): what was signed, XMP included. Two
    exports of the same creative compare equal this way; their signed bytes never do."""
    return PNG_SIGNATURE + b"".join(raw for kind, raw, _ in _chunks(png) if kind != b"caBX")


def digital_source_type(png: bytes) -> str | None:
    """The IPTC digital source type in a PNG's XMP, or None."""
    import re

    for _kind, _raw, data in _chunks(png):
        if data.startswith(XMP_KEYWORD + b"\x00"):
            text = data.split(b"\x00", 5)[-1].decode("utf-8", "replace")
            found = re.search(r'DigitalSourceType="([^"]+)"', text)
            return found.group(1) if found else None
    return None


# ----- signing credentials -----

@dataclass(frozen=True)
class Credentials:
    chain: bytes  # PEM, signer first
    key: bytes  # PEM
    alg: str
    test: bool  # the local test chain: valid signatures, trusted by no one
    root: bytes | None = None  # the test chain's root, for readers that should trust it in tests


def ensure_test_certificate(home: Path) -> Path:
    """Make a local test CA and a signing certificate under `home` unless they exist; returns the
    folder. The signer follows what C2PA validators check: an X.509 v3 end-entity certificate (not a
    CA) for digital signatures with the emailProtection extended key usage, issued by a CA (a
    self-signed signer is refused)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    folder = home / TEST_CHAIN_DIR
    if all((folder / n).is_file() for n in ("chain.pem", "key.pem", "root.pem")):
        return folder
    folder.mkdir(parents=True, exist_ok=True)

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "adgen test")])

    def usage(sign: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=not sign,
                             crl_sign=not sign, encipher_only=False, decipher_only=False)

    start = datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1)
    end = start + datetime.timedelta(days=3650)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    root = (x509.CertificateBuilder().subject_name(name("adgen test root CA")).issuer_name(name("adgen test root CA"))
            .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(usage(sign=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    signer = (x509.CertificateBuilder().subject_name(name(TEST_NAME)).issuer_name(root.subject)
              .public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(usage(sign=True), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (folder / "key.pem").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))
    (folder / "key.pem").chmod(0o600)
    (folder / "root.pem").write_bytes(root.public_bytes(pem))
    (folder / "chain.pem").write_bytes(signer.public_bytes(pem) + root.public_bytes(pem))
    return folder


def credentials(settings: Settings) -> Credentials:
    """The configured certificate chain and key, or the local test chain (made if missing)."""
    if (settings.c2pa_cert is None) != (settings.c2pa_key is None):
        raise ProvenanceError("ADGEN_C2PA_CERT and ADGEN_C2PA_KEY: set both (PEM chain and its key) or neither")
    if settings.c2pa_cert is not None:
        for var, path in (("ADGEN_C2PA_CERT", settings.c2pa_cert), ("ADGEN_C2PA_KEY", settings.c2pa_key)):
            if not Path(path).expanduser().is_file():
                raise ProvenanceError(f"{var}: {path} is not a file")
        return Credentials(chain=settings.c2pa_cert.expanduser().read_bytes(),
                           key=settings.c2pa_key.expanduser().read_bytes(), alg=settings.c2pa_alg, test=False)
    folder = ensure_test_certificate(settings.home)
    return Credentials(chain=(folder / "chain.pem").read_bytes(), key=(folder / "key.pem").read_bytes(),
                       alg="es256", test=True, root=(folder / "root.pem").read_bytes())


# ----- C2PA -----

class Signer:
    """Signs PNGs with one set of credentials; made once per export."""

    def __init__(self, creds: Credentials):
        import c2pa

        self.creds = creds
        # No thumbnails in the manifests: c2pa would decode and re-encode every ingredient and the
        # image itself for each signature (0.23 s of a 0.23 s signature with a logo and a product
        # photo), and the images it would show are the files themselves.
        self._context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
        try:
            self._signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(creds.alg, creds.chain, creds.key, None))
        except c2pa.C2paError as e:
            raise ProvenanceError(f"ADGEN_C2PA_CERT/ADGEN_C2PA_KEY ({creds.alg}) cannot sign: {e}") from None

    def sign(self, png: bytes, *, title: str, generation: dict, ingredients: dict[str, bytes]) -> bytes:
        """The PNG (XMP marked first) with a C2PA manifest: created by adgen with a trained model,
        `generation` as an assertion, and `ingredients` (title -> PNG/JPEG bytes) as components."""
        import c2pa

        manifest = {
            "claim_generator_info": [{"name": "adgen", "version": __version__}],
            "title": title,
            "format": "image/png",
            "assertions": [
                {"label": "c2pa.actions", "data": {"actions": [{
                    "action": "c2pa.created",
                    "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA,
                    "softwareAgent": {"name": "adgen", "version": __version__},
                    "parameters": {"models": generation.get("models", {}), "adapters": generation.get("adapters", {})},
                }]}},
                {"label": "org.adgen.generation", "data": generation},
            ],
        }
        dest = io.BytesIO()
        try:
            builder = c2pa.Builder(json.dumps(manifest), context=self._context)
            for name, data in ingredients.items():
                fmt = "image/jpeg" if data.startswith(b"\xff\xd8") else "image/png"
                builder.add_ingredient({"title": name, "relationship": "componentOf"}, fmt, io.BytesIO(data))
            builder.sign(self._signer, "image/png", io.BytesIO(with_xmp(png)), dest)
        except c2pa.C2paError as e:
            raise ProvenanceError(f"C2PA signing of {title} failed: {e}") from None
        return dest.getvalue()


def read_manifest(png: bytes, trust_root: bytes | None = None) -> tuple[dict, str]:
    """The active C2PA manifest of a PNG and its validation state as c2pa's Reader reports it
    ('Invalid', 'Valid', or 'Trusted' when `trust_root` (PEM) anchors the signer's chain)."""
    import c2pa

    context = c2pa.Context.from_dict({"trust": {"trust_anchors": trust_root.decode()}}) if trust_root else None
    reader = c2pa.Reader("image/png", io.BytesIO(png), context=context)
    return reader.get_active_manifest(), reader.get_validation_state()
