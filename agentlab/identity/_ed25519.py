"""Ed25519 signatures (RFC 8032): the approver credentials' primitive.

An approver signs a decision with a private key only they hold; the store keeps the public
key, which verifies a signature and cannot make one. A process that holds the store and
agentlab's signing key (an agent) can therefore check an approver's decision but not forge
one. The arithmetic is the ``cryptography`` package's (OpenSSL), loaded on first use so
that recording and reading never pay for it; keys travel as their raw 32 bytes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

__all__ = ["public_key", "sign", "verify"]


def _private(seed: bytes) -> Ed25519PrivateKey:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if len(seed) != 32:
        raise ValueError("an Ed25519 private key is 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key(seed: bytes) -> bytes:
    """The 32-byte public key of a 32-byte private key (seed)."""
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return bytes(_private(seed).public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def sign(seed: bytes, message: bytes) -> bytes:
    """The 64-byte signature of ``message`` under the private key ``seed``."""
    return bytes(_private(seed).sign(message))


def verify(public: bytes, message: bytes, signature: bytes) -> bool:
    """Whether ``signature`` is ``message`` signed by the private key of ``public``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if len(public) != 32 or len(signature) != 64:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
