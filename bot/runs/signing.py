"""The Ed25519 key that signs every seal of an audit log and every approval record, kept
outside the runs folder, and the key ring of retired public keys that old bundles were signed by.

The ring is a text file beside the key (``<key file>.retired``), one retired public key (hex) a
line, written by `gwi key rotate`; `trusted_keys` is the current public key plus the ring. A key
never enters the ring except by rotation, and a leaked key is taken out of it by deleting its line.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
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


def public_key_pem(public_hex: str) -> str:
    key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_hex))
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def fingerprint(public_hex: str) -> str:
    """``SHA256:<hex>`` of the raw public key: short enough to compare by eye."""
    return "SHA256:" + hashlib.sha256(bytes.fromhex(public_hex)).hexdigest()


def parse_public_key(text: str) -> str:
    """A public key given as 64 hex digits, a PEM public key, or a PEM private key (whose public
    half is taken); returned as hex. Raises `GwiError` saying what was expected."""
    text = text.strip()
    if len(text) == 64:
        try:
            Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
        except ValueError:
            pass
        else:
            return text.lower()
    if "PRIVATE KEY" in text:
        try:
            private = serialization.load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError):
            private = None
        if isinstance(private, Ed25519PrivateKey):
            return public_key_hex(private.public_key())
    else:
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, TypeError):
            key = None
        if isinstance(key, Ed25519PublicKey):
            return public_key_hex(key)
    raise GwiError("not an Ed25519 public key: give 64 hex digits or a PEM public key")


def ring_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + ".retired")


def retired_keys(key_path: Path) -> list[str]:
    """The ring's keys, oldest first; lines starting with ``#`` and unreadable lines are
    skipped (a person edits this file)."""
    path = ring_path(key_path)
    if not path.exists():
        return []
    keys: list[str] = []
    for line in path.read_text().splitlines():
        word = line.split("#", 1)[0].split()
        if not word:
            continue
        try:
            key = parse_public_key(word[0])
        except GwiError:
            continue
        if key not in keys:
            keys.append(key)
    return keys


def load_signer(path: Path) -> Signer | None:
    """The key at ``path``, or None when there is none (never creates one)."""
    return _load(path) if path.exists() else None


def trusted_keys(key_path: Path) -> frozenset[str]:
    """The keys gwi's own bundles may be signed by: the current key (when there is one) and the
    retired ones of the ring."""
    signer = load_signer(key_path)
    current = {signer.public_key_hex} if signer else set()
    return frozenset(current | set(retired_keys(key_path)))


def rotate(key_path: Path, *, allow_in_work_tree: bool = False) -> tuple[str | None, Signer]:
    """Retire the current key (its public half goes to the ring first, fsynced) and make a new
    one in its place. A crash between the two leaves the old key current and also in the ring,
    which is harmless; running rotate again finishes the job."""
    old = load_signer(key_path)
    if old is not None:
        ring = ring_path(key_path)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        line = f"{old.public_key_hex}  # retired {stamp}\n".encode()
        fd = os.open(ring, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)
        fsync_dir(ring.parent)
        retired = key_path.with_name(key_path.name + ".old")
        os.replace(key_path, retired)  # the new key is made exclusively below
        try:
            new = load_or_create_signer(key_path, announce=False,
                                        allow_in_work_tree=allow_in_work_tree)
        except BaseException:
            os.replace(retired, key_path)
            raise
        retired.unlink()
        fsync_dir(key_path.parent)
        return old.public_key_hex, new
    return None, load_or_create_signer(key_path, announce=False,
                                       allow_in_work_tree=allow_in_work_tree)


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
