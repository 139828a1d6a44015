"""When the identity provider is failing: what failed, since when, and when to try again.

A refresh inside the margin is a wish; expiry is the rule (issue #24). When a refresh fails for
any reason other than the IdP refusing the grant — the network, TLS, a timeout, 429, 5xx, a
Bitbucket identity call — the failure is recorded with the account, in its own field of
accounts.json (``"outage"``, docs/architecture.md), so every process on the machine sees it, and
the hot path's mirror carries it:

    {"since": local time of the first failure, "failures": n, "cause": bblogin's message (``cause_of``),
     "retry_at": local time of the next attempt, "identity_pending": bool, "in_flight": bool, "sent": bool}

``in_flight``: a provisional record for an early refresh still under way in its detached child
(``_background``): written by the caller that stopped waiting for it (``record_in_flight``), and
by the child itself, under the token set's lock, right before each token request goes out
(``record_sent``: ``sent``). The child's outcome replaces it. Only a call with a still-valid token
honours one without ``sent``: a call without, finding it under the token set's lock, knows no child
is at work (a child at work holds that lock) and refreshes. One with ``sent`` found under the lock
(``settle_in_flight``) is an answer lost — the child was killed, or crashed, after the IdP may
have rotated the refresh token — and becomes a failed attempt: its backoff window (counted from
when the request went out), then the stored refresh token; never the old one again at once,
whoever finds it.

Until ``retry_at`` no call contacts the IdP for this account: a token that still lives
:data:`FLOOR` seconds (IdP time) is served with one line on stderr — by the hot path too — and a
call without one fails at once with the recorded cause and the next try. The wait between attempts
grows from :data:`BASE` to :data:`CAP` seconds, jittered, and is never shorter than the IdP's
Retry-After. A success clears the record (``_session.store_tokens``); ``bblogin refresh`` tries at once whatever
it says. An OAuth refusal other than a dead grant (``is_outage``) is no outage: no record, no
window, the call ends with the IdP's error and its hint.

``identity_pending``: a Bitbucket refresh whose token answer was good but whose identity calls
failed. The new tokens were kept (same grant, same account: the old refresh token is spent); the
identity is checked on the first call after ``retry_at`` (the hot path declines that one).
"""

from __future__ import annotations

import time

from bblogin import _index
from bblogin._errors import IdPError, OAuthError
from bblogin._hot._answer import OUTAGE_FLOOR as FLOOR
from bblogin._hot._answer import MAX_FAILURES, in_backoff, whole_outage
from bblogin._record import asdict, record

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    import random
    from typing import Any

    from bblogin._index import Account

__all__ = ["BASE", "CAP", "EARLY_BUDGET", "EARLY_LOCK_WAIT", "IN_FLIGHT", "KNOWN_OUTAGE_BUDGET", "FLOOR", "Outage", "cause_of", "failure_after", "is_outage", "of", "record_failure", "record_in_flight", "record_sent", "settle_in_flight", "waiting"]

BASE = 15.0  # seconds before the first retry
CAP = 300.0  # the longest wait between attempts
RETRY_AFTER_CAP = 1800.0  # an IdP's Retry-After is honoured up to half an hour (_hot._answer.MAX_WINDOW: the sum)
MAX_DOUBLINGS = 10  # BASE * 2 ** 10 is far past CAP already
JITTER = 0.2  # each wait is its nominal length ± 20 %: a fleet of laptops does not retry in step
EARLY_BUDGET = 1.0  # seconds for all requests of a refresh whose caller holds a valid token
KNOWN_OUTAGE_BUDGET = 10.0  # one attempt (no retries) for a call without a valid token during an outage
EARLY_LOCK_WAIT = 0.25  # seconds such a caller waits for another process's refresh before serving


@record(frozen=True)
class Outage:
    since: float
    failures: int
    cause: str
    retry_at: float
    identity_pending: bool = False
    party: str | None = None  # who failed when it was not the IdP: "the proxy HOST:PORT" (the error's ``party``)
    in_flight: bool = False  # provisional (``record_in_flight``): a detached refresh has not answered yet; ``failures`` are the earlier ones (maybe 0)
    sent: bool = False  # with ``in_flight``: that refresh's token request went out (``record_sent``)

    @classmethod
    def from_json(cls, data: Any) -> Outage | None:
        """The record in accounts.json; None when there is none or it is damaged (``whole_outage``)
        — except that a damaged record which says the identity is still to be checked becomes a
        record whose window is over: the identity is checked on this call, never skipped."""
        whole = whole_outage(data)
        if whole is None:
            if isinstance(data, dict) and data.get("identity_pending") is True:
                return cls(since=time.time(), failures=1, cause="a damaged outage record", retry_at=0.0, identity_pending=True)
            return None
        return cls(
            since=float(whole["since"]), failures=whole["failures"], cause=whole["cause"],
            retry_at=float(whole["retry_at"]), identity_pending=bool(whole.get("identity_pending", False)),
            party=whole["party"] if isinstance(whole.get("party"), str) and len(whole["party"]) <= 300 and whole["party"].isprintable() else None,
            in_flight=whole.get("in_flight") is True,
            sent=whole.get("in_flight") is True and whole.get("sent") is True,
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def waiting(self, at: float | None = None) -> bool:
        """Whether the next attempt is still in the future."""
        return in_backoff(self.to_json(), time.time() if at is None else at)

    def next_try(self) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self.retry_at))

    def describe(self, at: float | None = None) -> str:
        """For ``status``, the TUI and the error of a call without a valid token."""
        at = time.time() if at is None else at
        started = time.strftime("%H:%M:%S", time.localtime(self.since))
        if self.in_flight:  # no failure: a refresh that has not answered yet
            earlier = f"; before it, {self.failures} failed attempt{'s' if self.failures != 1 else ''} since {started}: {self.cause}" if self.failures else ""
            if self.sent and not self.waiting(at):  # its child is gone, or still awaiting Bitbucket's identity calls
                return (
                    f"a background refresh sent its token request at {time.strftime('%H:%M:%S', time.localtime(self.retry_at - IN_FLIGHT))} and has not recorded its answer{earlier}; "
                    "if it has ended, the next use that needs a new token counts it as a failed attempt, whose backoff window runs from that request"
                )
            until = f"the cached token is served until it ends, at the latest {self.next_try()}" if self.waiting(at) else "the next use tries again"
            return f"a refresh is under way in the background (the identity provider has not answered it yet){earlier}; {until}"
        what = "the identity calls after a refresh fail" if self.identity_pending else f"{self.party or 'the identity provider'} is failing"
        when = f"next try at {self.next_try()} (in {max(0, round(self.retry_at - at))} s)" if self.waiting(at) else "the next use tries again"
        attempts = "1 failed attempt" if self.failures == 1 else f"{self.failures} failed attempts"
        return f"{what} since {started} ({attempts}: {self.cause}); {when}"


def of(account: Account) -> Outage | None:
    return Outage.from_json(account.outage)


def waiting(account: Account) -> Outage | None:
    """The account's outage while its next attempt is still in the future, else None."""
    outage = of(account)
    return outage if outage is not None and outage.waiting() else None


def delay(failures: int, retry_after: float | None = None, rand: random.Random | None = None) -> float:
    """Seconds before the next attempt after ``failures`` failures in a row: BASE doubled per
    failure, capped at CAP, ±JITTER; never less than the IdP's ``retry_after`` (up to its cap)."""
    import random as _random  # only a failure pays for it: the cached answer imports this module

    nominal = min(CAP, BASE * 2.0 ** min(MAX_DOUBLINGS, max(0, failures - 1)))  # the exponent capped: 2.0 ** 1024 overflows
    wait = nominal * (1.0 + JITTER * (2.0 * (rand or _random).random() - 1.0))
    if retry_after is not None:
        wait = max(wait, min(retry_after, RETRY_AFTER_CAP))
    return wait


TRANSIENT_OAUTH_ERRORS = frozenset({"temporarily_unavailable", "server_error"})  # RFC 6749 §4.1.2.1: the IdP's own "try later"


def is_outage(exc: IdPError) -> bool:
    """Whether a failed refresh is an outage — the network, TLS, a timeout, 429, 5xx, an answer
    that is no OAuth reply (a captive portal's page), a Bitbucket identity call — rather than a
    refusal: a well-formed OAuth error (invalid_client, unauthorized_client, invalid_scope, …, in
    a 4xx answer; 429 and 5xx never get this far, ``_http``) is the IdP's decision, which no
    backoff window will change: it ends the call with its own hint."""
    return not isinstance(exc, OAuthError) or exc.error in TRANSIENT_OAUTH_ERRORS


def cause_of(exc: IdPError) -> str:
    """What the record keeps of a failure: bblogin's own message — hosts, statuses, error codes —
    never text the IdP chose (an OAuth error_description): it is shown by status, doctor and the
    TUI, and stored in accounts.json and the hot path's mirror (docs/security.md)."""
    if isinstance(exc, OAuthError):
        return f"the identity provider answered {exc.error}"
    return exc.message


def record_failure(account: Account, exc: IdPError, *, identity_pending: bool = False) -> Outage:
    """Note the failed attempt with the account (in accounts.json, under the index lock) and
    return the record: when the next attempt may be made."""
    with _index.transaction() as index:
        current = index.accounts.get(account.id, account)
        outage = failure_after(Outage.from_json(current.outage), exc, identity_pending=identity_pending)
        for acct in (account, current):
            acct.outage = outage.to_json()
    return outage


def failure_after(previous: Outage | None, exc: IdPError, *, identity_pending: bool = False) -> Outage:
    """The record of a failed attempt now, after ``previous`` (``record_failure``, and
    ``_session.store_tokens`` in the very transaction that keeps tokens whose identity is unchecked)."""
    at = time.time()
    failures = min(MAX_FAILURES, (previous.failures if previous is not None else 0) + 1)  # a provisional window counts no failure
    return Outage(
        since=min(previous.since, at) if previous is not None else at,  # (a clock stepped back: never a first failure still to come)
        failures=failures,
        cause=cause_of(exc),
        retry_at=at + delay(failures, exc.retry_after),
        identity_pending=identity_pending or (previous is not None and previous.identity_pending),
        party=getattr(exc, "party", None),
    )


IN_FLIGHT = 15.0  # seconds of the provisional window: a detached refresh's bound (the 1 s budget, the 10 s answer, the lock wait)


def record_in_flight(account: Account, waited: float) -> None:
    """The caller that stopped waiting for its detached refresh (``_background``) after
    ``waited`` seconds: a provisional window of :data:`IN_FLIGHT` seconds, so that until the
    refresh ends every call — the hot path's too — serves the still-valid token at once (its
    line says a refresh is under way, not that the IdP fails) and none starts a second attempt.
    It counts no failure: the earlier ones, if any, stay as they were. The refresh's own outcome
    replaces it (``record_failure`` adds its failure; a success, a refusal or a dead grant clear it); a
    refresh killed before its request went out leaves it to expire (after: ``record_sent``). Nothing is written when the refresh has ended
    already (the account changed since ``account`` was read)."""
    at = time.time()
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        if current is None or current.updated_at != account.updated_at or current.outage != account.outage or current.tokens != account.tokens:
            return
        previous = Outage.from_json(current.outage)
        if previous is not None and previous.sent:
            return  # a dead child's mark (its refresh token went out): only a lock holder settles it (``settle_in_flight``)
        current.outage = _provisional(previous, at, f"no answer within {waited:g} s", sent=False).to_json()


def _provisional(previous: Outage | None, at: float, cause: str, *, sent: bool) -> Outage:
    """A provisional window of :data:`IN_FLIGHT` seconds from ``at`` over ``previous``: it counts
    no failure (nothing failed yet: the refresh is still at work), and the earlier failures, their
    cause, party and any identity still to be checked stay as they were; ``cause`` when there
    were none."""
    return Outage(
        since=min(previous.since, at) if previous is not None else at,  # (a clock stepped back: never a first failure still to come)
        failures=previous.failures if previous is not None else 0,
        cause=previous.cause if previous is not None else cause,
        retry_at=at + IN_FLIGHT,
        identity_pending=previous is not None and previous.identity_pending,
        party=previous.party if previous is not None else None,
        in_flight=True,
        sent=sent,
    )


ANSWER_LOST = "it ended after its token request went out, without the answer"  # the cause of a lost answer's failure
ANSWER_LOST_BY = "the background refresh"  # its party: what failed is bblogin's child, maybe not the IdP


def record_sent(account_id: str) -> None:
    """In a detached refresh (``_background``), under the token set's lock, right before a token
    request goes out (``_http.before_sending``): from now on the IdP may act on it and rotate the
    refresh token. Should the child die before its outcome replaces this record, whoever finds
    it under the lock next (``settle_in_flight``) knows the answer was lost, and never sends the
    old refresh token again before a backoff window ends. Earlier failures stay as they were."""
    at = time.time()
    with _index.transaction() as index:
        current = index.accounts.get(account_id)
        if current is None:
            return
        current.outage = _provisional(Outage.from_json(current.outage), at, "a token request went out", sent=True).to_json()


def settle_in_flight(account: Account, *, answered: bool = False) -> Outage | None:
    """Under the token set's lock, where no detached refresh can be at work (a child at work holds
    that lock): a provisional window left in the record is none. Without ``sent`` (or once the
    refresh that wrote it has its answer: ``answered``) it goes — an identity still to be checked
    stays so, its window over. With ``sent`` and no answer, the refresh's answer was lost: it
    becomes a failed attempt (cause :data:`ANSWER_LOST`, party :data:`ANSWER_LOST_BY`) whose
    backoff window, counted from when the request went out (the mark's ``retry_at`` is that time
    plus :data:`IN_FLIGHT`), no call sends the refresh token before; that record is returned.
    ``account`` takes the record as it is now."""
    lost = None
    with _index.transaction() as index:
        current = index.accounts.get(account.id)
        outage = Outage.from_json(current.outage) if current is not None else None
        if current is None or outage is None or not outage.in_flight:
            return None
        if outage.sent and not answered:
            at = time.time()
            sent_at = min(at, outage.retry_at - IN_FLIGHT)  # (``record_sent``) the window runs from the attempt: a mark found an hour later holds no call back; never from the future (a clock stepped back, an edit)
            failures = min(MAX_FAILURES, outage.failures + 1)
            lost = Outage(
                since=min(outage.since, at) if outage.failures else sent_at, failures=failures, cause=ANSWER_LOST, retry_at=sent_at + delay(failures),
                identity_pending=outage.identity_pending, party=ANSWER_LOST_BY,
            )
            current.outage = lost.to_json()
        elif outage.identity_pending:
            current.outage = Outage(since=outage.since, failures=max(1, outage.failures), cause=outage.cause, retry_at=0.0, identity_pending=True).to_json()
        elif outage.failures:  # the failures before it stay counted, their window over: the next one doubles the wait
            current.outage = Outage(since=outage.since, failures=outage.failures, cause=outage.cause, retry_at=time.time(), party=outage.party).to_json()
        else:
            current.outage = None
        account.outage = current.outage
    return lost
