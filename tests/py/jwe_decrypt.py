"""Independent check of the exporter's JWE tokens with jwcrypto (a Python JOSE implementation).

Usage: jwe_decrypt.py PRIVATE_KEY_PEM CLIENT_SECRET < tokens (one compact JWE per line)
Prints one JSON object per token: {"header": <JWE protected header>, "jws_header": <inner JWT
header>, "claims": <inner JWT claims>}. Exits non-zero if any token fails to decrypt or its
inner JWT fails HS256 verification with the client secret.
"""
import base64
import json
import sys

from jwcrypto import jwe, jwk, jws


def main() -> int:
    key_path, secret = sys.argv[1], sys.argv[2]
    with open(key_path, "rb") as f:
        private_key = jwk.JWK.from_pem(f.read())
    hmac_key = jwk.JWK(
        kty="oct", k=base64.urlsafe_b64encode(secret.encode()).rstrip(b"=").decode()
    )
    for line in sys.stdin:
        token = line.strip()
        if not token:
            continue
        outer = jwe.JWE()
        # RSA1_5 is outside jwcrypto's default allow-list; the platform offers it, so allow it.
        outer.allowed_algs = ["RSA-OAEP", "RSA1_5", "A128CBC-HS256", "A128GCM", "A256GCM"]
        outer.deserialize(token, key=private_key)
        inner = jws.JWS()
        inner.allowed_algs = ["HS256"]
        inner.deserialize(outer.payload.decode("ascii"), key=hmac_key)
        print(
            json.dumps(
                {
                    "header": json.loads(outer.objects["protected"]),
                    "jws_header": inner.jose_header,
                    "claims": json.loads(inner.payload),
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
