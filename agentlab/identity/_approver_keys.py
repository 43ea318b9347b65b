"""Approver keys: a private key shown once to its holder, a public key kept in the store.

The key text is ``agentlab-approver-key-`` and the base64url of a 32-byte Ed25519 seed. A
decision is signed with it where the approver decides (the CLI with ``--key-from``, the
Python API with ``key=``, a notebook widget with ``key_from=``); the gate that runs the call
verifies the signature with the public key. Neither the store nor agentlab's signing key can
make a signature, so a process holding both (an agent) cannot decide in a keyed approver's
name.
"""

from __future__ import annotations

import base64
import binascii
import secrets

from agentlab.errors import SecretError
from agentlab.identity._ed25519 import public_key, sign, verify

__all__ = ["KEY_PREFIX", "approver_public_key", "new_approver_key", "sign_decision",
           "signature_valid"]

KEY_PREFIX = "agentlab-approver-key-"


def _seed(key: str) -> bytes:
    text = key.strip()
    if not text.startswith(KEY_PREFIX):
        raise SecretError(
            f"that is not an approver key (it starts with {KEY_PREFIX!r}, as printed once by "
            "`agentlab approver add NAME --issue-key`)")
    body = text[len(KEY_PREFIX):]
    try:
        seed = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError):
        seed = b""
    if len(seed) != 32:
        raise SecretError("the approver key is damaged (copied incompletely?); issue a new "
                          "one with `agentlab approver add NAME --issue-key`")
    return seed


def new_approver_key() -> tuple[str, str]:
    """A fresh key: (the private key text, shown once; its public key in hex, stored)."""
    seed = secrets.token_bytes(32)
    text = KEY_PREFIX + base64.urlsafe_b64encode(seed).decode().rstrip("=")
    return text, public_key(seed).hex()


def approver_public_key(key: str) -> str:
    """The public key (hex) of an approver key text; SecretError if it is not one."""
    return public_key(_seed(key)).hex()


def sign_decision(key: str, message: bytes) -> str:
    """The signature (hex) of ``message`` under the approver key ``key``."""
    return sign(_seed(key), message).hex()


def signature_valid(public_hex: str, message: bytes, signature: str | None) -> bool:
    """Whether ``signature`` (hex) signs ``message`` under the key whose public half is
    ``public_hex``. Malformed input is simply not valid."""
    if not signature:
        return False
    try:
        return verify(bytes.fromhex(public_hex), message, bytes.fromhex(signature))
    except ValueError:
        return False
