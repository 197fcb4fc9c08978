"""HS256 JWT verification, standard library only, strict on purpose.

Why our own and not PyJWT: the target must run on the bare base image
(no wheels), and every rule that decides "401 or not" should be visible in
one page. The rules, in the order they are applied:

- ``Authorization: Bearer <token>``, one header, scheme case-insensitive
  (RFC 7235), at most MAX_TOKEN_CHARS.
- Three base64url parts, no padding, canonical (re-encoding gives the same
  text, so a changed character is always a changed token).
- Header: a JSON object whose ``alg`` is exactly ``"HS256"``; ``none``,
  ``None``, HS512 or RS256 are refused, whatever the signature. No ``crit``
  (we understand no extension), ``typ`` absent or ``JWT``.
- Signature: HMAC-SHA256 of ``header.payload`` with the gateway's key,
  compared in constant time, **before** the payload is parsed.
- Claims: ``exp`` required, ``nbf`` if present, both with LEEWAY;
  ``iss`` and ``aud`` must match; ``sub`` a short plain identifier (it is
  forwarded to the backends in a header). JSON with duplicate keys, NaN or
  Infinity is malformed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_TOKEN_CHARS = 4096
B64URL = re.compile(r"^[A-Za-z0-9_-]*$")
SUBJECT = re.compile(r"^[A-Za-z0-9._@:-]{1,128}$")


class TokenError(Exception):
    """Why a token was refused: ``reason`` is a short code, the message says more."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class Policy:
    key: bytes
    issuer: str
    audience: str
    leeway_s: float


def bearer(values: list[str]) -> str:
    """The token of the only Authorization header, or TokenError."""
    if not values:
        raise TokenError("missing", "no Authorization header")
    if len(values) > 1:
        raise TokenError("malformed", "more than one Authorization header")
    scheme, _, token = values[0].strip().partition(" ")
    if scheme.lower() != "bearer":
        raise TokenError("malformed", "the Authorization scheme is not Bearer")
    token = token.strip()
    if not token:
        raise TokenError("missing", "an empty Bearer token")
    if len(token) > MAX_TOKEN_CHARS:
        raise TokenError("malformed", f"the token is longer than {MAX_TOKEN_CHARS} characters")
    return token


def b64url(part: str) -> bytes:
    """Strict base64url: the JWS alphabet, no padding, canonical."""
    if not B64URL.match(part) or len(part) % 4 == 1:
        raise TokenError("malformed", "a part is not base64url")
    try:
        raw = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
    except (binascii.Error, ValueError):
        raise TokenError("malformed", "a part is not base64url") from None
    if base64.urlsafe_b64encode(raw).rstrip(b"=").decode() != part:
        raise TokenError("malformed", "a part is not canonical base64url")
    return raw


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        raise ValueError("duplicate keys")
    return dict(pairs)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_object(raw: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates,
                           parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError):
        raise TokenError("malformed", f"the {what} is not a JSON object") from None
    if not isinstance(value, dict):
        raise TokenError("malformed", f"the {what} is not a JSON object")
    return value


def _time(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TokenError("malformed", f"the {name} claim is not a number")
    return float(value)


def verify(token: str, policy: Policy, *, now_s: float) -> dict[str, Any]:
    """The token's claims if every rule holds; TokenError naming the first that does not."""
    parts = token.split(".")
    if len(parts) != 3:
        raise TokenError("malformed", "a JWS compact token has three parts")
    header = json_object(b64url(parts[0]), "header")
    if header.get("alg") != "HS256":
        raise TokenError("algorithm", f"alg {header.get('alg')!r} is not HS256")
    if "crit" in header or header.get("typ", "JWT") != "JWT":
        raise TokenError("malformed", "an unsupported header (crit, or typ other than JWT)")
    signature = b64url(parts[2])
    expected = hmac.new(policy.key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise TokenError("signature", "the signature does not match")
    claims = json_object(b64url(parts[1]), "payload")
    return check_claims(claims, policy, now_s=now_s)


def check_claims(claims: dict[str, Any], policy: Policy, *, now_s: float) -> dict[str, Any]:
    exp, nbf = _time(claims, "exp"), _time(claims, "nbf")
    if exp is None:
        raise TokenError("claims", "no exp claim")
    if now_s >= exp + policy.leeway_s:
        raise TokenError("expired", "the token has expired")
    if nbf is not None and now_s + policy.leeway_s < nbf:
        raise TokenError("not-yet-valid", "the token is not valid yet (nbf)")
    if claims.get("iss") != policy.issuer:
        raise TokenError("claims", "wrong issuer")
    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud if isinstance(aud, list) else []
    if policy.audience not in audiences:
        raise TokenError("claims", "wrong audience")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not SUBJECT.match(sub):
        raise TokenError("claims", "no usable sub claim")
    return claims


def unverified_subject(token: str) -> str:
    """The sub of a token read WITHOUT checking it: what the auth-bypass
    variant does on its unchecked route (the classic decode(verify=False))."""
    try:
        claims = json_object(b64url(token.split(".")[1]), "payload")
        sub = claims.get("sub")
        return sub if isinstance(sub, str) and SUBJECT.match(sub) else "anonymous"
    except (TokenError, IndexError):
        return "anonymous"
