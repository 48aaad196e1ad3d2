"""Personal data sealed before it reaches Redis (issue 14).

Every personal value the router stores (each answer, the counter's identity check, a
webhook's secret, a web session) is sealed with AES-GCM (``cryptography``; no cipher
of our own) under a data key, and bound to where it lives: the "context" (``case:<ref>/
<field>``) is the cipher's associated data, so a sealed value copied to another case or
field does not open. Everything else (event type, states, times, departments) stays
readable, so the status, operator and statistics views need no key.

Envelope keys, as a cloud KMS keeps them: the data keys live in Redis beside the data
(``keys.KEY_RING``), each wrapped (AES-GCM again) under a master key that never does.
The master key comes from ``ROUTER_MASTER_KEY`` (base64 of 32 bytes), else the file
``ROUTER_KEY_FILE``, else ``master.key`` in the data folder, which ``router up`` makes
(0600) on its first start. A copy of Redis, or of its append-only file, opens nothing
without it, and every process on every host sees a rotation at once: ``router keys
rotate`` adds a data key and makes it current, re-seals every case under it, and then
retires the old one (router.rotation).

A sealed value is bytes: MARK, the data key's 2-byte id, a 12-byte nonce, then the
ciphertext and its 16-byte tag, 31 bytes more than the plain text. MARK (0xFE) never
begins UTF-8 text, so a value stored before sealing (plain JSON) is told apart.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
import time
import weakref
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from redis import Redis

from router import keys

MARK = b"\xfe"
NONCE = 12
KEY_ID = 2
HEADER = len(MARK) + KEY_ID + NONCE
TEXT_PREFIX = "sealed:"  # a sealed value kept inside JSON text (a webhook's secret)

MASTER_ENV = "ROUTER_MASTER_KEY"
KEY_FILE_ENV = "ROUTER_KEY_FILE"
KEY_FILE = "master.key"

# How often a process asks Redis which data key is current (one HGET), in seconds: a
# rotation waits this long, and a little more, before it re-seals anything.
FOLLOW_SECONDS = 1.0

# Makes the first data key, unless another process made one first; returns the current
# key's id. KEYS: the ring. ARGV: the new key's id, its wrapped key.
FIRST_KEY_SCRIPT = """
local current = redis.call('HGET', KEYS[1], 'current')
if current then return current end
redis.call('HSET', KEYS[1], 'key:' .. ARGV[1], ARGV[2], 'current', ARGV[1])
return ARGV[1]
"""


class KeyProblem(RuntimeError):
    """The keys needed to seal or open personal data are missing or wrong."""


class UnknownKey(KeyProblem):
    """A value sealed under a data key the ring no longer holds (it was retired)."""


def data_dir() -> Path:
    """The service's data folder (``ROUTER_DATA_DIR``, default ``.router-data``)."""
    return Path(os.environ.get("ROUTER_DATA_DIR", ".router-data")).resolve()


def key_file() -> Path:
    """Where the master key is kept when it is not given in the environment."""
    given = os.environ.get(KEY_FILE_ENV, "").strip()
    return Path(given).resolve() if given else data_dir() / KEY_FILE


def make_key_file(path: Path | None = None) -> Path:
    """Draw a master key into ``path`` (default: ``key_file()``), readable by this user
    only (0600), unless one is there already; return its path."""
    path = path or key_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path
    with os.fdopen(fd, "w") as out:
        out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode() + "\n")
    return path


def master_key() -> bytes:
    """The master key, from the environment or its file; ``KeyProblem`` if neither."""
    given = os.environ.get(MASTER_ENV, "").strip()
    where = MASTER_ENV
    if not given:
        path = key_file()
        if not path.exists():
            raise KeyProblem(
                f"No master key: set {MASTER_ENV} or {KEY_FILE_ENV}, or start the service "
                f"once with `router up`, which makes {path}"
            )
        given, where = path.read_text().strip(), str(path)
    try:
        key = base64.b64decode(given, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != 32:
        raise KeyProblem(f"The master key in {where} is not 32 bytes of base64")
    return key


def is_sealed(value: bytes | str | None) -> bool:
    return isinstance(value, bytes) and value[:1] == MARK


def key_id_of(token: bytes) -> str:
    """The id of the data key a sealed value was sealed under (4 hex digits)."""
    return token[len(MARK) : len(MARK) + KEY_ID].hex()


class KeyRing:
    """The data keys in one Redis, opened with the master key; seals and opens values.

    Safe to share between threads. Learns of a new current key within FOLLOW_SECONDS,
    and of any key it does not hold the moment it meets a value sealed under it.
    """

    def __init__(self, redis: Redis, master: bytes | None = None) -> None:
        self.redis = redis
        self._master = master
        self._lock = threading.Lock()
        self._keys: dict[str, AESGCM] = {}
        self._current = ""
        self._checked = 0.0

    # --- sealing -----------------------------------------------------------------------

    def seal(self, plain: bytes, context: str, kid: str = "") -> bytes:
        """``plain`` sealed for ``context`` under the current data key (or ``kid``)."""
        chosen = kid or self.current()
        # One look at the dict: another thread's refresh may empty it at any moment.
        try:
            aead = self._keys.get(chosen) or self._load(chosen)
        except UnknownKey:
            if kid:
                raise
            # The id this thread read as current left Redis before its key was loaded
            # (the ring flushed, or the key retired by another process after a
            # rotation): seal under the key that is current now.
            self._forget()
            chosen = self.current()
            aead = self._keys.get(chosen) or self._load(chosen)
        kid = chosen
        nonce = os.urandom(NONCE)
        body = aead.encrypt(nonce, plain, context.encode())
        return MARK + bytes.fromhex(kid) + nonce + body

    def open(self, token: bytes, context: str) -> bytes:
        """The plain text of a sealed value; ``KeyProblem`` if it does not open here."""
        kid = key_id_of(token)
        aead = self._keys.get(kid) or self._load(kid)
        try:
            return aead.decrypt(
                token[len(MARK) + KEY_ID : HEADER], token[HEADER:], context.encode()
            )
        except InvalidTag:
            raise KeyProblem(
                f"a value sealed under key {kid} does not open for {context}"
            ) from None

    def seal_text(self, plain: str, context: str) -> str:
        """A sealed value as text, to keep inside JSON."""
        token = self.seal(plain.encode(), context)
        return TEXT_PREFIX + base64.urlsafe_b64encode(token).decode()

    def open_text(self, text: str, context: str) -> str:
        """``seal_text``'s plain text; text that is not sealed is returned as it is."""
        if not text.startswith(TEXT_PREFIX):
            return text
        return self.open(base64.urlsafe_b64decode(text[len(TEXT_PREFIX) :]), context).decode()

    # --- the ring ----------------------------------------------------------------------

    def current(self) -> str:
        """The id of the data key new values are sealed under (made on first use)."""
        known = self._current  # one look: another thread's refresh may empty it
        if not known or time.monotonic() - self._checked > FOLLOW_SECONDS:
            held = self.redis.hget(keys.KEY_RING, "current")
            known = held.decode() if isinstance(held, bytes) else ""
            if not known:
                known = self._first_key()
            if known not in self._keys:
                self._load(known)
            self._current, self._checked = known, time.monotonic()
        return known

    def ids(self) -> list[str]:
        """Every data key in the ring, current first."""
        held = [_text(k) for k in self.redis.hkeys(keys.KEY_RING)]
        current = self.redis.hget(keys.KEY_RING, "current")
        now = current.decode() if isinstance(current, bytes) else ""
        found = sorted(k[len("key:") :] for k in held if k.startswith("key:"))
        return sorted(found, key=lambda kid: kid != now)

    def add_key(self) -> str:
        """Put a new data key in the ring and make it current; return its id."""
        kid = self._new_id()
        self.redis.hset(keys.KEY_RING, mapping={f"key:{kid}": self._wrap(kid), "current": kid})
        self._forget()
        return kid

    def retire(self, kids: Iterable[str]) -> None:
        """Remove data keys from the ring: what is still sealed under them is lost."""
        gone = [f"key:{kid}" for kid in kids if kid != self.current()]
        if gone:
            self.redis.hdel(keys.KEY_RING, *gone)
        self._forget()

    def refresh(self) -> None:
        """Ask Redis again which data key is current, and load keys afresh."""
        self._forget()

    def _forget(self) -> None:
        with self._lock:
            self._keys.clear()
            self._current, self._checked = "", 0.0

    def _first_key(self) -> str:
        kid = self._new_id()
        made = self.redis.eval(FIRST_KEY_SCRIPT, 1, keys.KEY_RING, kid, self._wrap(kid))
        return made.decode() if isinstance(made, bytes) else str(made)

    def _new_id(self) -> str:
        held = set(self.ids())
        while True:
            kid = secrets.token_bytes(KEY_ID).hex()
            if kid not in held:
                return kid

    def _wrap(self, kid: str) -> bytes:
        nonce = os.urandom(NONCE)
        dek = AESGCM.generate_key(bit_length=256)
        return nonce + AESGCM(self._master_key()).encrypt(nonce, dek, f"ring:{kid}".encode())

    def _load(self, kid: str) -> AESGCM:
        wrapped = self.redis.hget(keys.KEY_RING, f"key:{kid}")
        if not isinstance(wrapped, bytes):
            raise UnknownKey(f"data key {kid} is not in the key ring (retired?)")
        try:
            dek = AESGCM(self._master_key()).decrypt(
                wrapped[:NONCE], wrapped[NONCE:], f"ring:{kid}".encode()
            )
        except InvalidTag:
            raise KeyProblem(
                "The master key does not open the key ring in this Redis: give the "
                "master key this Redis was first used with"
            ) from None
        aead = AESGCM(dek)
        with self._lock:
            self._keys[kid] = aead
        return aead

    def _master_key(self) -> bytes:
        if self._master is None:
            self._master = master_key()
        return self._master


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


_RINGS: weakref.WeakKeyDictionary[Redis, KeyRing] = weakref.WeakKeyDictionary()
_RINGS_LOCK = threading.Lock()


def ring_for(redis: Redis) -> KeyRing:
    """The key ring of ``redis``, one per client, made the first time it is asked for."""
    with _RINGS_LOCK:
        ring = _RINGS.get(redis)
        if ring is None:
            ring = _RINGS[redis] = KeyRing(redis)
        return ring
