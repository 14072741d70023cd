"""Login throttling: per name typed and client address, never a lock on the account.

Why not lock the account after a few failures: anyone who knows a staff name could then keep
its owner out of the console, five requests every quarter of an hour. Here the failures are
counted per (name as typed, client address), so an attacker slows down only their own guesses
at that name: its owner, from another address, still signs in with the right password.

- Each tier allows so many wrong passwords per fixed window (:data:`TIERS`): five per quarter
  hour and ten per hour, so a guesser who waits out the first refusal (at most a quarter of an
  hour) is then refused until the hour is over: the wait grows, up to ten guesses an hour.
- An attempt takes its rank in the window *before* its password is checked, in one statement
  (``INSERT ... ON CONFLICT DO UPDATE SET hits = hits + 1 RETURNING hits``); it is refused from
  that rank alone. Guesses sent in parallel therefore each get their own rank, and no more than
  the allowance ever reaches the password hash. A refused attempt, or a correct password,
  gives its rank back: only wrong passwords stay counted, and a refused attempt does not lengthen
  the wait. A correct password does not wipe the failures already counted, so an attacker
  sharing the user's address gets no fresh allowance each time the user signs in.
- The counters do not depend on whether the name exists: an unknown name is throttled exactly
  like a real one, with the same answer, so the throttle tells nothing about which names exist.
- Counters live in the database (``rate_limit_counter``, the table the API's rate limiter
  keeps its fixed windows in; buckets here start with ``console.login.``) so every gateway
  process sees them. The name and address are stored only as a SHA-256 of the pair: a password
  typed into the name field does not end up in a table in clear.

The client address is the TCP peer (``request.client``). ``X-Forwarded-For``, which an
attacker would set to a new value for each guess, is believed only from the load balancers
named in ``GATEWAY_TRUSTED_PROXIES`` (``gateway serve`` hands them to uvicorn), which then
puts the real client's address there. Behind a balancer left undeclared, every client shares
its address and the throttle applies per name to everyone.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from fastapi import Request

BUCKET_PREFIX: Final = "console.login."
# Counters of windows that ended this long ago are deleted (the longest window, plus slack).
KEEP_SECONDS: Final = 2 * 3600


@dataclass(frozen=True)
class Tier:
    """At most ``attempts`` wrong passwords per name and address in each fixed window."""

    seconds: int
    attempts: int

    @property
    def bucket_prefix(self) -> str:
        # One bucket per tier: two tiers' windows may start at the same second, and one
        # statement cannot update the same (bucket, window) row twice.
        return f"{BUCKET_PREFIX}{self.seconds}:"


TIERS: Final = (Tier(seconds=15 * 60, attempts=5), Tier(seconds=3600, attempts=10))
ALLOWED_ATTEMPTS: Final = TIERS[0].attempts
"""Wrong passwords a name and address get before the first refusal."""


@dataclass(frozen=True)
class Window:
    """One counter row: a tier's bucket for one (name, address) and the window's start."""

    tier: Tier
    bucket: str
    start: int

    @property
    def end(self) -> int:
        return self.start + self.tier.seconds


@dataclass(frozen=True)
class Reservation:
    """An attempt's rank in each window; ``refused`` when one of them is past its allowance."""

    windows: tuple[Window, ...]
    ranks: tuple[int, ...]
    now: int

    @property
    def refused(self) -> bool:
        return any(
            rank > window.tier.attempts
            for window, rank in zip(self.windows, self.ranks, strict=True)
        )

    @property
    def fills_allowance(self) -> bool:
        """Whether this attempt, if wrong, is the last one a window allows (worth a warning)."""
        return any(
            rank == window.tier.attempts
            for window, rank in zip(self.windows, self.ranks, strict=True)
        )

    @property
    def rank(self) -> int:
        """The attempt's rank in the shortest window."""
        return self.ranks[0]

    @property
    def retry_after(self) -> int:
        """Seconds until every window past its allowance has ended (0 when not refused)."""
        waits = [
            window.end - self.now
            for window, rank in zip(self.windows, self.ranks, strict=True)
            if rank > window.tier.attempts
        ]
        return max(1, *waits) if waits else 0


def attempt_key(name: str, address: str) -> str:
    """The SHA-256 (hex) of a name as typed and a client address."""
    pair = f"{name}\x00{address}".encode("utf-8", "backslashreplace")
    return hashlib.sha256(pair).hexdigest()


def windows_at(key: str, now: int, tiers: Sequence[Tier] = TIERS) -> tuple[Window, ...]:
    return tuple(
        Window(tier, tier.bucket_prefix + key, now // tier.seconds * tier.seconds) for tier in tiers
    )


def client_address(request: Request) -> str:
    """The address the request came from: the TCP peer, or the forwarded one when the peer
    is a declared load balancer (see the module docstring)."""
    return request.client.host if request.client is not None else "unknown"


def minutes_to_wait(seconds: int) -> int:
    return max(1, math.ceil(seconds / 60))
