"""The Ed25519 key that signs finished audit logs and approval records, kept outside the runs
folder."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from bot.errors import GwiError
from bot.runs.atomic import fsync_dir, write_temp


@dataclass(frozen=True)
class Signer:
    key: Ed25519PrivateKey

    @property
    def public_key_hex(self) -> str:
        return public_key_hex(self.key.public_key())

    def sign(self, message: bytes) -> str:
        return self.key.sign(message).hex()


def public_key_hex(key: Ed25519PublicKey) -> str:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def verify_signature(public_hex: str, signature_hex: str, message: bytes) -> bool:
    try:
        key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
        key.verify(bytes.fromhex(signature_hex), message)
    except (InvalidSignature, ValueError):
        return False
    return True


def _load(path: Path) -> Signer:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise GwiError(f"the signing key {path} is not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise GwiError(f"the signing key {path} is not an Ed25519 key")
    return Signer(key)


def work_tree_of(path: Path) -> Path | None:
    """The git work tree ``path`` would be inside (a folder above it holding ``.git``), if any."""
    for folder in path.absolute().parents:
        if (folder / ".git").exists():
            return folder
    return None


def load_or_create_signer(
    path: Path, *, announce: bool = True, allow_in_work_tree: bool = False
) -> Signer:
    """Load the PEM key at ``path``, creating it (mode 0600) on first use with a clear message.

    Creation is exclusive: when two threads or processes make the first key at once, one key
    wins and both use it (else one would sign with a key that no longer exists anywhere). A new
    key is never written inside a git work tree (where `git add -A` would commit it) unless
    ``allow_in_work_tree``.
    """
    if path.exists():
        return _load(path)
    tree = None if allow_in_work_tree else work_tree_of(path)
    if tree is not None:
        raise GwiError(
            f"refusing to create the signing key {path} inside the git work tree {tree}, where"
            " `git add -A` would commit it: set GWI_DATA_DIR (or GWI_SIGNING_KEY) to a folder"
            " outside it, or GWI_KEY_IN_WORK_TREE=1 if you mean it"
        )
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    old_umask = os.umask(0o077)
    try:
        tmp = write_temp(path, pem)
    finally:
        os.umask(old_umask)
    try:
        os.chmod(tmp, 0o600)
        os.link(tmp, path)  # fails if another writer got there first, unlike a rename
    except FileExistsError:
        return _load(path)
    finally:
        tmp.unlink()
    fsync_dir(path.parent)
    signer = Signer(key)
    if announce:
        print(
            f"gwi: created a new Ed25519 signing key at {path} (public key"
            f" {signer.public_key_hex}); keep it outside the data you share",
            file=sys.stderr,
        )
    return signer
