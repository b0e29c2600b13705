"""Secrets at rest: tokens of social platforms, telephony and other integrations are stored encrypted.

``EncryptedTextField`` keeps a Fernet token (AES-128-CBC with an HMAC-SHA256, from the
``cryptography`` library) in the database and gives Python the plain text. The key comes from
``SECRETS_ENCRYPTION_KEY`` (any string; a random one of at least 32 characters in production), or,
when that is unset, is derived from ``SECRET_KEY`` with HKDF: rotating ``SECRET_KEY`` then makes the
stored secrets unreadable, so production should set the dedicated key (docs/deploy.md).

A value that cannot be decrypted (the key changed) reads as "" and is logged: the integration then
fails its signature check with a clear 403 and the admin shows the secret as not set, to be entered
again. Nothing is ever shown back once entered (the admin's widgets do not render the value).
"""

from __future__ import annotations

import base64
import logging
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.db import models

logger = logging.getLogger(__name__)

PREFIX = "fernet:"


@cache
def _fernet(material: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"care-secrets", info=b"fernet").derive(
        material.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def _cipher() -> Fernet:
    return _fernet(getattr(settings, "SECRETS_ENCRYPTION_KEY", "") or str(settings.SECRET_KEY))


def encrypt(plain: str) -> str:
    if not plain:
        return ""
    return PREFIX + _cipher().encrypt(plain.encode()).decode()


def decrypt(stored: str) -> str:
    if not stored:
        return ""
    if not stored.startswith(PREFIX):
        return stored  # written before encryption, or by hand: readable as it is
    try:
        return _cipher().decrypt(stored[len(PREFIX) :].encode()).decode()
    except InvalidToken:
        logger.error("A stored secret cannot be decrypted: SECRETS_ENCRYPTION_KEY or SECRET_KEY changed.")
        return ""


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]
    """A text column holding a secret encrypted; Python sees the plain text."""

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> str:
        return decrypt(value) if value else ""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt(str(value))
