"""Settings of the ASGI server that the browser tests start: the project's own, except that the
tests' cheap password hashes are accepted (tests/conftest.py hashes with MD5 so that users are quick
to make), so that a browser can log in through the login form without a second of hashing per user.
"""

from __future__ import annotations

from config.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
