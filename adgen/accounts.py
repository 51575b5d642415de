"""Advertiser accounts for the web app: salted password hashes, sign-in, and who may touch what.

A user works on the brands they were given (`adgen users add alice --brand northwind`) and on
nothing else. Every lookup by id goes through `campaign_of`, `creative_of` or `brand_of`, which
answer "no such ..." both for ids that do not exist and for ids of another advertiser, so a
foreign id cannot even be told apart from a wrong one.

Sign-in is rate limited by `SignInLimiter` (failed attempts per account and per client address),
and a web session stays valid only while `password_stamp` of its user is the one it signed in with,
so changing a password or removing a user ends their sessions.
"""

import hashlib
import hmac
import re
import secrets
import threading
import time
from collections import deque

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from adgen import records
from adgen.spec import DEFAULT_COLORS

# scrypt with the parameters OWASP lists for it (N=2^17, r=8, p=1): ~0.1 s and 128 MiB per check.
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
MIN_PASSWORD = 8


class AccessError(LookupError):
    """An id the signed-in user may not see; worded the same as an id that does not exist."""


class AccountError(ValueError):
    """A user name or password that cannot be used; the message names the field."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=256 * 1024**2)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, digest = stored.split("$")
    if scheme != "scrypt":
        return False
    again = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p),
                           maxmem=256 * 1024**2)
    return hmac.compare_digest(again, bytes.fromhex(digest))


# A check against this hash when the user does not exist takes as long as a real one, so the time
# of a failed sign-in does not reveal which user names exist.
_DUMMY_HASH = None


def add_user(s: Session, name: str, password: str, brands: list[str]) -> records.User:
    """Create a user (or reset their password) and grant them the named brands, creating a brand
    with an empty kit when it is new."""
    if not USER_NAME.match(name):
        raise AccountError(f"user name {name!r}: use letters, digits and . _ @ - (at most 100)")
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: use at least {MIN_PASSWORD} characters")
    if not brands:
        raise AccountError("--brand: give at least one brand the user works on")
    user = s.scalar(select(records.User).where(records.User.name == name))
    if user is None:
        user = records.User(name=name, password_hash=hash_password(password))
        s.add(user)
    else:
        user.password_hash = hash_password(password)
    s.flush()
    for brand_name in brands:
        brand_name = brand_name.strip()
        if not brand_name:
            raise AccountError("--brand: a brand name cannot be empty")
        brand = s.scalar(select(records.Brand).where(records.Brand.name == brand_name))
        if brand is None:
            brand = records.Brand(name=brand_name, voice="", banned_terms=[], colors=list(DEFAULT_COLORS))
            s.add(brand)
            s.flush()
        if s.get(records.BrandAccess, (user.id, brand.id)) is None:
            s.add(records.BrandAccess(user_id=user.id, brand_id=brand.id))
    return user


def set_password(s: Session, name: str, password: str) -> None:
    """Change a user's password; their web sessions end because the password stamp changes."""
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"password: use at least {MIN_PASSWORD} characters")
    _existing(s, name).password_hash = hash_password(password)


def remove_user(s: Session, name: str) -> None:
    """Delete a user and their brand grants; brands, campaigns and reviews stay as they are."""
    user = _existing(s, name)
    for grant in s.scalars(select(records.BrandAccess).where(records.BrandAccess.user_id == user.id)):
        s.delete(grant)
    s.flush()
    s.delete(user)


def _existing(s: Session, name: str) -> records.User:
    user = s.scalar(select(records.User).where(records.User.name == name))
    if user is None:
        raise AccountError(f"user name {name!r}: no such user")
    return user


def password_stamp(s: Session, name: str) -> str | None:
    """A short fingerprint of the user's current password hash (None when the user is gone): a
    session remembers it at sign-in and ends when it changes."""
    stored = s.scalar(select(records.User.password_hash).where(records.User.name == name))
    return hashlib.sha256(stored.encode()).hexdigest()[:16] if stored else None


class SignInLimiter:
    """Failed sign-ins per account and per client address in a sliding window. `wait` says how many
    seconds a new attempt must wait (0: go ahead) and is asked before any password is hashed. A
    success clears the account's failures; an address's failures only age out, so signing in to
    one's own account does not buy more guesses at another."""

    def __init__(self, attempts: int, window: float, clock=time.monotonic):
        self.attempts, self.window, self.clock = attempts, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            self._failures.pop(key, None)
        return times

    def wait(self, name: str, address: str) -> float:
        with self._lock:
            now = self.clock()
            waits = [times[0] + self.window - now for key in (f"user:{name}", f"addr:{address}")
                     if len(times := self._recent(key, now)) >= self.attempts]
            return max(waits, default=0.0)

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            now = self.clock()
            if len(self._failures) > 10_000:  # guesses at many made-up names: forget the stale ones
                for key in list(self._failures):
                    self._recent(key, now)
            for key in (f"user:{name}", f"addr:{address}"):
                self._failures.setdefault(key, self._recent(key, now)).append(now)

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(f"user:{name}", None)


def authenticate(s: Session, name: str, password: str) -> bool:
    global _DUMMY_HASH
    user = s.scalar(select(records.User).where(records.User.name == name))
    if user is None:
        _DUMMY_HASH = _DUMMY_HASH or hash_password(secrets.token_hex(8))
        check_password(password, _DUMMY_HASH)
        return False
    return check_password(password, user.password_hash)


def brands_of(s: Session, user_name: str) -> list[records.Brand]:
    """The brands a user may work on, by name."""
    query = (select(records.Brand).join(records.BrandAccess, records.BrandAccess.brand_id == records.Brand.id)
             .join(records.User, records.User.id == records.BrandAccess.user_id)
             .where(records.User.name == user_name).order_by(records.Brand.name))
    return list(s.scalars(query))


def brand_of(s: Session, user_name: str, brand_id: str) -> records.Brand:
    brand = next((b for b in brands_of(s, user_name) if b.id == brand_id), None)
    if brand is None:
        raise AccessError(f"no brand {brand_id!r}")
    return brand


def campaign_of(s: Session, user_name: str, campaign_id: str) -> records.Campaign:
    campaign = s.get(records.Campaign, campaign_id) if campaign_id else None
    if campaign is None or campaign.brand_id not in {b.id for b in brands_of(s, user_name)}:
        raise AccessError(f"no campaign {campaign_id!r}")
    return campaign


def creative_of(s: Session, user_name: str, creative_id: str) -> records.Creative:
    creative = s.get(records.Creative, creative_id) if creative_id else None
    if creative is None:
        raise AccessError(f"no creative {creative_id!r}")
    try:
        campaign_of(s, user_name, creative.campaign_id)
    except AccessError:
        raise AccessError(f"no creative {creative_id!r}") from None
    return creative


def campaigns_of(s: Session, user_name: str) -> list[records.Campaign]:
    """The user's campaigns, newest first, each with its brand loaded in the same query."""
    brand_ids = [b.id for b in brands_of(s, user_name)]
    query = select(records.Campaign).where(records.Campaign.brand_id.in_(brand_ids)).options(
        joinedload(records.Campaign.brand)).order_by(records.Campaign.created_at.desc(), records.Campaign.id)
    return list(s.scalars(query))
