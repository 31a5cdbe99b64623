"""A token per person on a team's server (`--tokens-file FILE`).

Why. With one shared token (`--token`), taking the server away from one person means giving everyone a new
token, and nobody can tell who uses it. Tabby gives each user a token of their own; here a file does, one line
per person, `NAME TOKEN`, a `#` at a line's start or after a blank starting a comment:

    # who     token (at least 16 characters: `python -c "import secrets; print(secrets.token_urlsafe(24))"`)
    ann       Zr2x0f7Q9yY4vUo1mHc8sLp3dT6bWnAe
    bob       q8Hk1VtB5sXcN0eRj2LmG7yPw4DfZa9U

Checking. A request's `Authorization: Bearer T` is compared with every token of the file in constant time
(`hmac.compare_digest`, all of them, so the time taken does not tell how close a guess came), then with
`--token`'s if one is set too (its user is "shared"). The user's name goes into the metric
`autocomplete_user_requests_total{user}`; a prompt is never logged, a token never shown.

Changes without a restart. The file is looked at (one `os.stat`) at most every `check_interval_s` as requests
arrive. A changed file is read at the first look once its last write is reload.SETTLE_S old (reload.FileWatch),
so a line removed takes that person's access away at the first request `check_interval_s` after the last look.
A file that does not parse is refused:
- at start, with its line number and why (the server exits 2);
- later (or when the file is gone), it is logged and the tokens read before keep working, so that a typo does
  not lock the team out.

A file that does not parse has a line without exactly two fields, a name not of letters, digits and `_.@-`
(at most 64), a token shorter than 16 characters, or a name or token twice.
"""
from __future__ import annotations

import hmac
import logging
import re
import threading
import time

from .reload import FileWatch, file_signature

log = logging.getLogger("autocomplete.tokens")
NAME = re.compile(r"[A-Za-z0-9_.@-]{1,64}")
COMMENT = re.compile(r"(?:^|\s)#.*$")  # `#` at a line's start or after a blank: a token may hold one
MIN_TOKEN_CHARS = 16
SHARED_USER = "shared"   # the user of --token's token when a tokens file is given too


class TokenFileError(ValueError):
    """The tokens file does not parse: the message names the line and why."""


def parse_tokens(text: str, source: str = "tokens file") -> dict[str, str]:
    """{name: token} of a tokens file's text; TokenFileError on the first line that is wrong."""
    users: dict[str, str] = {}
    seen: set[str] = set()
    for number, line in enumerate(text.splitlines(), 1):
        line = COMMENT.sub("", line).strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) != 2:
            raise TokenFileError(f"{source}:{number}: expected `NAME TOKEN`, found {len(fields)} field(s)")
        name, token = fields
        if not NAME.fullmatch(name):
            raise TokenFileError(f"{source}:{number}: a name is 1-64 letters, digits, `_`, `.`, `@` or `-`")
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{source}:{number}: {name}'s token is shorter than {MIN_TOKEN_CHARS} characters")
        if name in users:
            raise TokenFileError(f"{source}:{number}: {name} has a token already")
        if token in seen:
            raise TokenFileError(f"{source}:{number}: {name}'s token is another user's too")
        users[name] = token
        seen.add(token)
    return users


class TokenSet:
    """The tokens of `path`, read again when it changes (see the module's docstring)."""

    def __init__(self, path: str, check_interval_s: float = 2.0):
        self.path = path
        self.check_interval_s = check_interval_s
        self._lock = threading.Lock()
        # a file that is gone is read too: it fails, is logged, and the tokens read before stay
        self._watch = FileWatch(path, check_interval_s, file_signature(path), gone_is_change=True)
        self._users = self._read()  # TokenFileError at start: the server refuses to run
        self.reloads = 0

    def _read(self) -> list[tuple[str, bytes]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            raise TokenFileError(f"cannot read {self.path}: {e}") from None
        return [(name, token.encode("utf-8")) for name, token in parse_tokens(text, self.path).items()]

    def user_of(self, given: bytes) -> str | None:
        """The name whose token is `given` (the bearer token's bytes), or None."""
        self._look()
        with self._lock:
            users = self._users
        found = None
        for name, token in users:  # every token compared: the time does not depend on which matched
            if hmac.compare_digest(given, token) and found is None:
                found = name
        return found

    def __len__(self) -> int:
        with self._lock:
            return len(self._users)

    def _look(self) -> None:
        with self._lock:
            changed = self._watch.change(time.monotonic())
            if changed is None:
                return
            self._watch.known = changed[0]
            try:
                users = self._read()
            except TokenFileError as e:
                log.error("tokens: %s; the tokens read before stay in use", e)
                return
            self._users = users
            self.reloads += 1
        log.info("tokens: %s read again, %d user(s)", self.path, len(users))
