"""Bearer tokens for load against an authenticating entry point: good HS256
JWTs minted with the key the target holds, and a seeded set of bad ones.

Written here, not borrowed from the target, so a bug in the target's token
code cannot hide behind the same bug in the tokens it is tested with.

``bad_tokens`` gives named kinds a gateway must refuse — no header, wrong
scheme, garbage, truncated, bad base64, ``alg: none`` (any case), HS512
and RS256 headers, a signature made with another key, expired, not yet
valid, wrong audience or issuer, no exp or sub, a tampered payload under
the old signature, an empty signature — and ``fuzzed`` random edits of a
good token, drawn from ``seed``. Any edit of the token's text must be
refused; edits that a lenient base64 decoder would read as the very same
bytes (the unused low bits of a last character) are skipped, since
accepting those is not a hole.

``spoofed_identity`` gives the headers a client sends to claim to be
someone else beside its good token (X-User-Id and its kin): an entry point
must take who asks from the token alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import random
import string
from dataclasses import dataclass
from typing import Any

JWT_CHARS = string.ascii_letters + string.digits + "-_"
# headers that proxies and gateways commonly use to pass on who asks: a client
# may send any of them, and an entry point must believe none of them over its token
IDENTITY_HEADERS = ("X-User-Id", "X-User", "X-Forwarded-User", "X-Auth-Request-User", "X-Remote-User")
EDIT_CHARS = JWT_CHARS + ".=+/ "


@dataclass(frozen=True)
class BadToken:
    """One kind of bad credential: the Authorization header to send (None: send none)."""

    kind: str
    authorization: str | None


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _json_part(value: dict[str, Any]) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode())


def mint(claims: dict[str, Any], key: bytes, *, header: dict[str, Any] | None = None,
         digest: str = "sha256") -> str:
    """A compact JWS: header.payload.HMAC(key, header.payload), HS256 unless told otherwise."""
    signing_input = f"{_json_part(header or {'alg': 'HS256', 'typ': 'JWT'})}.{_json_part(claims)}"
    signature = hmac.new(key, signing_input.encode("ascii"), getattr(hashlib, digest)).digest()
    return f"{signing_input}.{b64url(signature)}"


def claims_for(subject: str, *, issuer: str, audience: str, now_s: float, life_s: float = 3600) -> dict[str, Any]:
    """The claims of a good token for subject, valid from a minute ago for life_s."""
    return {"sub": subject, "iss": issuer, "aud": audience, "iat": int(now_s), "nbf": int(now_s) - 60,
            "exp": int(now_s + life_s)}


def spoofed_identity(subject: str) -> dict[str, str]:
    """Headers claiming to be `subject`, each common identity header at once,
    so the load needs no knowledge of which one a target might believe."""
    return {header: subject for header in IDENTITY_HEADERS}


def bad_tokens(*, key: bytes, claims: dict[str, Any], seed: int, fuzzed: int = 5) -> list[BadToken]:
    """The named bad kinds, then `fuzzed` seeded edits of a good token; same seed, same list."""
    rng = random.Random(seed)
    good = mint(claims, key)
    head, body, sig = good.split(".")
    now = int(claims.get("iat", 0))
    kinds = {
        "missing": None,
        "empty-bearer": "Bearer",
        "wrong-scheme": f"Token {good}",
        "garbage": "Bearer " + "".join(rng.choice(JWT_CHARS) for _ in range(60)),
        "two-parts": f"Bearer {head}.{body}",
        "truncated": f"Bearer {good[:-rng.randint(5, 20)]}",
        "bad-base64": f"Bearer {head}.{body[:10]}*{body[11:]}.{sig}",
        "alg-none": f"Bearer {mint(claims, key, header={'alg': 'none', 'typ': 'JWT'}).rsplit('.', 1)[0]}.",
        "alg-none-case": f"Bearer {mint(claims, key, header={'alg': 'None', 'typ': 'JWT'})}",
        "alg-hs512": f"Bearer {mint(claims, key, header={'alg': 'HS512', 'typ': 'JWT'}, digest='sha512')}",
        "alg-rs256": f"Bearer {mint(claims, key, header={'alg': 'RS256', 'typ': 'JWT'})}",
        "wrong-key": f"Bearer {mint(claims, key + b'-not-the-key')}",
        "expired": f"Bearer {mint({**claims, 'nbf': now - 7200, 'exp': now - 3600}, key)}",
        "not-yet-valid": f"Bearer {mint({**claims, 'nbf': now + 3600, 'exp': now + 7200}, key)}",
        "wrong-audience": f"Bearer {mint({**claims, 'aud': 'some-other-api'}, key)}",
        "wrong-issuer": f"Bearer {mint({**claims, 'iss': 'https://issuer.invalid'}, key)}",
        "no-exp": f"Bearer {mint({k: v for k, v in claims.items() if k != 'exp'}, key)}",
        "no-subject": f"Bearer {mint({k: v for k, v in claims.items() if k != 'sub'}, key)}",
        "tampered-payload": f"Bearer {head}.{_json_part({**claims, 'sub': 'admin'})}.{sig}",
        "empty-signature": f"Bearer {head}.{body}.",
    }
    found = [BadToken(kind, value) for kind, value in kinds.items()]
    found += [BadToken(f"fuzz-{i + 1}", f"Bearer {edit}") for i, edit in enumerate(_edits(good, rng, fuzzed))]
    return found


def _edits(good: str, rng: random.Random, count: int) -> list[str]:
    """count distinct random edits (replace, delete, insert) of the token's text."""
    edits: list[str] = []
    while len(edits) < count:
        at = rng.randrange(len(good))
        how = rng.choice(("replace", "delete", "insert"))
        if how == "delete":
            edited = good[:at] + good[at + 1:]
        else:
            new = rng.choice(EDIT_CHARS)
            edited = good[:at] + new + good[at + (how == "replace"):]
        if edited.strip() != good and edited.strip() not in edits and not _reads_the_same(edited, good):
            edits.append(edited.strip())
    return edits


def _reads_the_same(edited: str, good: str) -> bool:
    """True if a lenient decoder sees the same three parts (so the edit changed nothing)."""
    try:
        return [_lenient(p) for p in edited.split(".")] == [_lenient(p) for p in good.split(".")]
    except (binascii.Error, ValueError):
        return False


def _lenient(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


__all__ = ["BadToken", "b64url", "bad_tokens", "claims_for", "mint", "spoofed_identity"]
