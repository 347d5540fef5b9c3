"""Encryption at rest: what Kefu stores about customers, sealed with Fernet when
`KEFU_ENCRYPTION_KEY` is set (off by default).

The variable holds one Fernet key, or several separated by commas, newest first. Values are
written under the first key and read under any of them (`MultiFernet`), so a key is rotated by
putting a new one in front, running `kefu rotate-key`, then dropping the old one.

The stores seal only what a customer wrote or was told (message texts, slot values, feedback,
hand-off transcripts, recorded replies). Ids, timestamps and counters stay readable, so expiry,
caps, SCAN and `kefu forget` work on sealed records. A value stored before encryption was
switched on is read as it was written; `kefu rotate-key` seals it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

ENCRYPTION_KEY_VARIABLE = "KEFU_ENCRYPTION_KEY"
# Fernet tokens are url-safe base64 of the version byte 0x80 and a timestamp, so they all start
# with "gAAAAA"; the JSON Kefu stores starts with {, [ or ", so the two are never confused.
TOKEN_START = "gAAAAA"
KEY_CHECK_TEXT = "kefu encryption key check"
NEW_KEY_COMMAND = '.venv/bin/python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'


class EncryptionKeyError(Exception):
    """A key is malformed, or a stored record cannot be read with the keys given."""


def is_token(value: str) -> bool:
    return value.startswith(TOKEN_START)


class Cipher:
    """Seals and opens stored text with the keys of `KEFU_ENCRYPTION_KEY`; without keys it
    passes text through and refuses to open a sealed record."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        fernets = [_fernet(key, number, len(keys)) for number, key in enumerate(keys, 1)]
        self.newest = fernets[0] if fernets else None
        self.any_key = MultiFernet(fernets) if fernets else None

    @classmethod
    def from_environment(cls) -> Cipher:
        value = os.environ.get(ENCRYPTION_KEY_VARIABLE, "")
        return cls([key.strip() for key in value.split(",") if key.strip()])

    @property
    def enabled(self) -> bool:
        return self.any_key is not None

    def encrypt(self, text: str) -> str:
        """`text` sealed under the newest key; unchanged when encryption is off."""
        if self.any_key is None:
            return text
        return self.any_key.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, value: str, where: str) -> str:
        """The text of a stored value: a token opened, anything else (written before encryption
        was on) as it is. `where` names the store and record for the error."""
        if not is_token(value):
            return value
        if self.any_key is None:
            raise EncryptionKeyError(f"{where}: the record is encrypted but {ENCRYPTION_KEY_VARIABLE} is not set; "
                                     "set it to the key the record was written with")
        try:
            return self.any_key.decrypt(value.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise EncryptionKeyError(
                f"{where}: the record was encrypted with a key {ENCRYPTION_KEY_VARIABLE} does not hold; set it to "
                "that key (while rotating, to NEW_KEY,OLD_KEY)") from None

    def check(self, stored_check: str | None, where: str) -> str | None:
        """Raises unless a store's key check opens with these keys; returns a key check to store
        where there is none yet. Tracker stores call it when they start: Rasa answers a
        conversation it could not read as a new one, so a wrong key has to stop the bot first."""
        if stored_check is not None:
            self.decrypt(stored_check, f"{where} (its key check)")
            return None
        return self.encrypt(KEY_CHECK_TEXT) if self.enabled else None

    def reencrypt(self, value: str, where: str) -> str | None:
        """`value` sealed under the newest key, or None when it already is, so a rotation that
        was interrupted skips what it had done."""
        if self.newest is None or self.any_key is None:
            raise EncryptionKeyError(f"{ENCRYPTION_KEY_VARIABLE} is not set; set it to NEW_KEY,OLD_KEY to rotate")
        if not is_token(value):
            return self.encrypt(value)
        try:
            self.newest.decrypt(value.encode("ascii"))
            return None
        except InvalidToken:
            pass
        self.decrypt(value, where)  # raises the clear error when no key opens it
        return self.any_key.rotate(value.encode("ascii")).decode("ascii")


def _fernet(key: str, number: int, count: int) -> Fernet:
    try:
        return Fernet(key)
    except (ValueError, TypeError):
        raise EncryptionKeyError(
            f"{ENCRYPTION_KEY_VARIABLE}: key {number} of {count} is not a Fernet key (32 url-safe base64-encoded "
            f"bytes); make one with {NEW_KEY_COMMAND}") from None


def reencrypt_sqlite_column(connection: sqlite3.Connection, cipher: Cipher, table: str, column: str,
                            where: str) -> int:
    """Seals every value of `table.column` under the newest key, then VACUUMs so the file's free
    pages lose the old values too; returns how many rows were rewritten. A row changed since it
    was read (`kefu forget` may run meanwhile) is left alone."""
    rewritten = 0
    with connection:
        rows = connection.execute(f"SELECT id, {column} FROM {table} ORDER BY id").fetchall()
        for row_id, stored in rows:
            new = cipher.reencrypt(stored, f"{where}, row {row_id}")
            if new is not None:
                rewritten += connection.execute(f"UPDATE {table} SET {column} = ? WHERE id = ? AND {column} = ?",
                                                (new, row_id, stored)).rowcount
    connection.execute("VACUUM")
    return rewritten
