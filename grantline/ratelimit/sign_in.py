"""Failed sign-ins slow down, per account and per address, without locking anyone out for good.

- **Per account** (the username typed, whether or not it exists, so the answer tells nothing
  about which accounts exist): after ``account_failures`` failures, each attempt must wait
  ``first_delay`` seconds after the last failure, doubling with every further failure up to
  ``account_max_delay``. Never a permanent lock: the wait is at most a few minutes after the
  latest failure, and attempts refused while waiting are not counted (no password is checked).
- **Known addresses**: an address a person signed in from is exempt from their account's wait
  for ``known_address_lifetime``, so someone guessing from elsewhere cannot keep them out.
- **Per address** (for any account): after ``address_failures`` failures the same doubling
  applies, up to ``address_max_delay``; a successful sign-in from the address clears its count.
- A count is forgotten ``failure_window`` seconds after its last failure.

The counts live in the database and are written in the transaction that records the failed
sign-in and its audit event: no extra commit, exact across processes. Keys are keyed digests
(HMAC under the instance secret), so the table names no username and no address.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from starlette.requests import Request

from grantline.audit import event
from grantline.context import Context
from grantline.ratelimit.config import SignInPolicy
from grantline.ratelimit.guard import RateLimited, client_address
from grantline.storage import Transaction
from grantline.storage.limits import limits_of

__all__ = ["SignInThrottle", "SignInThrottled", "sign_in_wait"]


class SignInThrottled(RateLimited):
    """A sign-in attempt refused, without checking the password, until the wait is over."""


def sign_in_wait(
    policy: SignInPolicy,
    counters: Mapping[str, tuple[int, int]],
    *,
    account: str,
    address: str,
    known: str,
    now: int,
) -> tuple[str, int]:
    """(what throttles, seconds left): ``("", 0)`` when the attempt may go ahead."""
    if known in counters:
        # This person signed in from this address before: neither a guesser elsewhere (the
        # account's count) nor one behind the same NAT (the address's count) keeps them out.
        return ("", 0)
    waits: list[tuple[int, str]] = [(0, "")]
    count, last = counters.get(address, (0, now))
    delay = policy.delay(count, policy.address_failures, policy.address_max_delay)
    waits.append((last + delay - now, "address"))
    count, last = counters.get(account, (0, now))
    delay = policy.delay(count, policy.account_failures, policy.account_max_delay)
    waits.append((last + delay - now, "account"))
    wait, reason = max(waits)
    return (reason, wait) if wait > 0 else ("", 0)


@dataclass(frozen=True, slots=True)
class SignInThrottle:
    """One sign-in attempt's keys, and what the login handler asks of them."""

    ctx: Context
    account: str
    address: str
    known: str
    client_id: str
    request_id: str
    user_id: str | None
    username_digest: str

    @classmethod
    def for_attempt(
        cls,
        ctx: Context,
        request: Request,
        username: str,
        *,
        client_id: str,
        request_id: str,
        user_id: str | None,
    ) -> SignInThrottle:
        username_digest = ctx.digester.digest("username", username)
        address = client_address(request)
        return cls(
            ctx=ctx,
            account="account:" + username_digest,
            address="address:" + ctx.digester.digest("sign_in_address", address),
            known="known:" + ctx.digester.digest("sign_in_known", f"{username_digest}|{address}"),
            client_id=client_id,
            request_id=request_id,
            user_id=user_id,
            username_digest=username_digest[:32],
        )

    @property
    def _policy(self) -> SignInPolicy:
        return self.ctx.settings.rate_limits.sign_in

    async def refuse_if_throttled(self) -> None:
        """Raises ``SignInThrottled`` (429, audited) while the account or the address must
        wait."""
        now = self.ctx.clock()
        async with self.ctx.store.reader() as tx:
            counters = await limits_of(tx).sign_in_counters(
                [self.account, self.address, self.known], now
            )
        reason, wait = sign_in_wait(
            self._policy,
            counters,
            account=self.account,
            address=self.address,
            known=self.known,
            now=now,
        )
        if not wait:
            return
        async with self.ctx.store.transaction() as tx:
            await tx.append(
                event(
                    "user.login_throttled",
                    now,
                    client_id=self.client_id,
                    user_id=self.user_id,
                    request_id=self.request_id,
                    username_digest=self.username_digest,
                    throttled_by=reason,
                    retry_after=wait,
                )
            )
        raise SignInThrottled(
            f"Too many failed sign-in attempts. Try again in {wait} seconds.",
            wait,
            detail=f"sign-in throttled by {reason}",
        )

    async def record_failure(self, tx: Transaction, now: int) -> None:
        """Counts a wrong password against the account and the address, within ``tx``."""
        limits = limits_of(tx)
        window = self._policy.failure_window
        for key in (self.account, self.address):
            await limits.count_sign_in_failure(key, now, window=window, keep_for=window)
        if secrets.randbelow(64) == 0:
            await limits.prune_sign_in_counters(now)

    async def record_success(self, tx: Transaction, now: int) -> None:
        """Remembers this address for this account, within ``tx``. The address's count stays:
        an attacker with an account of their own must not reset it between guesses at others."""
        await limits_of(tx).mark_sign_in(
            self.known, now, keep_for=self._policy.known_address_lifetime
        )
