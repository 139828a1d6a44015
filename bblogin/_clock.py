"""The identity provider's clock as this machine sees it: ``offset`` = IdP time − local time.

Token lifetimes (``exp``, ``iat``, ``nbf``, ``expires_in``) are the IdP's time, and the servers
that check the tokens (kube-apiserver, Bitbucket) keep the same time as the IdP. A laptop, VM or
WSL clock that drifted by minutes would otherwise refuse fresh tokens (clock ahead) or hand out
tokens the server already considers expired (clock behind). So bblogin measures the offset on
every answer from the IdP and judges every expiry in IdP time (local time + offset).

Measuring. One HTTP answer brackets the IdP's clock: its ``Date`` header (RFC 9110 §6.6.1, one
second resolution, truncated) was written between sending the request (local ``sent``) and
receiving the answer (``received``), so the offset lies in ``[Date − received, Date + 1 − sent]``.
A fresh ID token was issued before it was received, so ``iat − received`` bounds the offset from
below and narrows the Date's bracket when the two agree; when they disagree the ``Date`` wins
(backdated or oddly late ``iat``s exist). The iat of a token is never used to judge that same
token (it would always look fresh).

Combining. The offset believed is the median of the upper bounds of recent samples — of this
process's answers from the IdP's host and those stored with the accounts of that issuer — so
one odd value (a proxy's wrong clock, a replayed answer) cannot move it while the others agree,
and validity is judged as if the IdP's clock were as late as the samples allow (never hand out a
token in its last second). A sample further than :data:`CAP` from this machine's clock is not
believed at all: bblogin then judges in local time and says so.

Clock steps. Each sample is tagged with the local wall clock minus the boot-time clock (the "boot
epoch"; Linux's CLOCK_BOOTTIME keeps counting in suspend and is never set). When NTP or a resume
steps the wall clock, the epoch moves: older samples no longer apply and are dropped, and the hot
path declines until the next answer from the IdP measures again.

Stdlib only. The hot path (``_hot._answer``) reads the stored result from the index without this module.
"""

from __future__ import annotations

import math
import time
from _thread import allocate_lock  # threading.Lock itself, without importing threading

from bblogin import _record
from bblogin._record import field, record

TYPE_CHECKING = False  # not `from typing import …` at run time: typing costs a cached call a fifth of a Python start-up
if TYPE_CHECKING:
    from typing import Any

    from bblogin._tokens import TokenSet

CAP = 86400  # seconds: a larger offset is not believed
NOTABLE = 5  # seconds: smaller offsets are within measuring error and not worth mentioning
STEP_TOLERANCE = 5.0  # seconds the boot epoch may move (NTP slewing) before samples are dropped
MAX_SAMPLES = 8  # kept per account and per host in this process
MAX_WIDTH = 120.0  # seconds: one answer's round trip (+1 s of Date truncation) brackets no more

_BOOTTIME = getattr(time, "CLOCK_BOOTTIME", None)


def boot_epoch() -> float | None:
    """Local wall time minus time since boot: constant until the wall clock is stepped. None
    where there is no boot-time clock (then steps go unnoticed until the next measurement)."""
    if _BOOTTIME is None:
        return None
    return time.time() - time.clock_gettime(_BOOTTIME)


def same_epoch(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and abs(a - b) <= STEP_TOLERANCE


@record(frozen=True)
class Sample:
    """The offset lies in ``[lo, hi]`` seconds."""

    lo: float
    hi: float

    @property
    def mid(self) -> float:
        return (self.lo + self.hi) / 2

    @property
    def believable(self) -> bool:
        """Both bounds finite and within :data:`CAP`, and no wider than one answer can bracket
        (a damaged accounts.json must not move the offset beyond the cap)."""
        return abs(self.lo) <= CAP and abs(self.hi) <= CAP and 0 <= self.hi - self.lo <= MAX_WIDTH

    def intersect(self, other: Sample) -> Sample | None:
        lo, hi = max(self.lo, other.lo), min(self.hi, other.hi)
        return Sample(lo, hi) if lo <= hi else None


def bracket(idp_seconds: float, sent: float, received: float) -> Sample:
    """The offset when the IdP said it was ``idp_seconds`` (truncated to the second) at some
    moment between ``sent`` and ``received`` (local)."""
    return Sample(idp_seconds - received, idp_seconds + 1 - sent)


def parse_date(value: str | None) -> float | None:
    """An HTTP-date as Unix seconds; None when absent or malformed."""
    if not value:
        return None
    import email.utils  # here, not at the top: a cached answer reads the clock, it does not measure it

    try:
        parsed = email.utils.parsedate_to_datetime(value)
        return parsed.timestamp() if parsed.tzinfo is not None else None
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def estimate(samples: list[Sample]) -> int | None:
    """The offset to judge expiry by: the median of the upper bounds of the believable samples,
    rounded up. None when no sample is believable."""
    import statistics

    believable = [s.hi for s in samples if s.believable]
    return math.ceil(statistics.median(believable)) if believable else None


def describe(offset: int) -> str:
    """``this machine's clock is 3 min 12 s behind the IdP's``"""
    span = abs(offset)
    if span >= 2 * 86400:
        amount = f"{span // 86400} d {span % 86400 // 3600} h"
    elif span >= 3600:
        amount = f"{span // 3600} h {span % 3600 // 60} min"
    elif span >= 60:
        amount = f"{span // 60} min {span % 60} s"
    else:
        amount = f"{span} s"
    return f"this machine's clock is {amount} {'behind' if offset > 0 else 'ahead of'} the IdP's"


# -- what this process saw ------------------------------------------------------------------------
@record
class _Exchange:
    url: str
    sent: float
    received: float
    epoch: float | None
    date: float | None
    sample: Sample | None


_lock = allocate_lock()
_seen: dict[str, list[_Exchange]] = {}  # host -> the latest answers from it


def _host(url: str) -> str:
    import urllib.parse

    return (urllib.parse.urlsplit(url).hostname or "").lower()


def observe(url: str, date: str | None, sent: float, received: float) -> None:
    """Note one answer from ``url`` (called for every IdP answer by ``_http``'s client hooks)."""
    seconds = parse_date(date)
    exchange = _Exchange(url, sent, received, boot_epoch(), seconds, bracket(seconds, sent, received) if seconds is not None else None)
    with _lock:
        answers = _seen.setdefault(_host(url), [])
        answers.append(exchange)
        del answers[:-MAX_SAMPLES]


def refine_with_iat(url: str, iat: int) -> None:
    """The last answer from ``url`` carried a verified token issued at ``iat``. It was issued
    before it was received — not necessarily during the request: dex mints the device flow's
    tokens at approval — so ``iat − received`` is a lower bound of the offset: it narrows the
    answer's Date sample from below when it is consistent with it (an iat later than the Date
    allows is ignored: the Date wins). Without a Date, the token is taken as minted during the
    request, the best there is."""
    exchange = _last(url)
    if exchange is None:
        return
    with _lock:
        if exchange.sample is None:
            exchange.sample = bracket(iat, exchange.sent, exchange.received)
        else:
            exchange.sample = exchange.sample.intersect(Sample(iat - exchange.received, math.inf)) or exchange.sample


def _applies(exchange: _Exchange) -> bool:
    """Whether the wall clock has not been stepped since ``exchange`` (unknowable: assume not)."""
    now = boot_epoch()
    return now is None or same_epoch(exchange.epoch, now)


def observed(url: str) -> list[Sample]:
    """This process's samples from ``url``'s host that still apply (same boot epoch)."""
    with _lock:
        answers = list(_seen.get(_host(url), []))
    return [e.sample for e in answers if e.sample is not None and _applies(e)]


def _last(url: str) -> _Exchange | None:
    with _lock:
        return next((e for e in reversed(_seen.get(_host(url), [])) if e.url == url), None)


def stamped(tokens: TokenSet, url: str) -> TokenSet:
    """``tokens`` as just received from ``url``, onto the IdP's clock: the access token's expiry
    counted from the answer's Date (``_grants`` counts ``expires_in`` from the local receipt) and
    the answer's sample attached for the account's history. Call after verifying any ID token."""
    exchange = _last(url)
    sample = exchange.sample if exchange is not None and _applies(exchange) else None
    expires_at = tokens.access_expires_at
    if expires_at is not None and exchange is not None and exchange.date is not None and abs(exchange.date - exchange.received) <= CAP:
        expires_at += math.floor(exchange.date - exchange.received)
    elif expires_at is not None:
        expires_at += estimate(observed(url)) or 0
    return _record.replace(tokens, access_expires_at=expires_at, clock=(sample,) if sample is not None else ())


# -- what the index keeps per account ---------------------------------------------------------------
@record
class Clock:
    """The offset last measured for an account's IdP, as stored in ``accounts.json``."""

    offset: int = 0  # add to local time to get the IdP's (0: never measured, or not believed)
    epoch: float | None = None  # the boot epoch the samples were taken in
    samples: list[Sample] = field(default_factory=list)
    unbelieved: int | None = None  # the last measurement beyond CAP, when that is all there is

    def current(self) -> list[Sample]:
        """The stored samples that still apply on this machine's clock right now."""
        return self.samples if same_epoch(self.epoch, boot_epoch()) else []

    def updated(self, new: list[Sample]) -> Clock:
        """This clock with ``new`` samples (newest last) added; older ones beyond MAX_SAMPLES go."""
        samples = [*self.current(), *new][-MAX_SAMPLES:]
        offset = estimate(samples)
        far = [s for s in samples if abs(s.mid) > CAP]
        unbelieved = round(far[-1].mid) if offset is None and far else None
        return Clock(offset or 0, boot_epoch(), samples, unbelieved)

    def to_json(self) -> dict[str, Any]:
        return {
            "offset": self.offset,
            "epoch": self.epoch,
            "samples": [[round(s.lo, 3), round(s.hi, 3)] for s in self.samples],
            "unbelieved": self.unbelieved,
        }

    @classmethod
    def from_json(cls, data: object) -> Clock:
        """Tolerant: anything malformed reads as 'never measured'."""
        if not isinstance(data, dict):
            return cls()
        offset, epoch, unbelieved = data.get("offset"), data.get("epoch"), data.get("unbelieved")
        samples = []
        for pair in data.get("samples") or []:
            if isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in pair) and pair[0] <= pair[1]:
                samples.append(Sample(float(pair[0]), float(pair[1])))
        return cls(
            offset=offset if isinstance(offset, int) and not isinstance(offset, bool) and abs(offset) <= CAP else 0,
            epoch=float(epoch) if isinstance(epoch, (int, float)) and not isinstance(epoch, bool) else None,
            samples=samples[-MAX_SAMPLES:],
            unbelieved=unbelieved if isinstance(unbelieved, int) and not isinstance(unbelieved, bool) else None,
        )

    def shown(self) -> int:
        """The offset to show people: the samples' median midpoint (``offset`` leans late on purpose)."""
        import statistics

        mids = [s.mid for s in self.samples if s.believable]
        return round(statistics.median(mids)) if mids else self.offset

    def note(self) -> str | None:
        """What to tell the user, if anything."""
        if self.unbelieved is not None:
            return f"{describe(self.unbelieved)}; that is more than bblogin compensates ({CAP // 3600} h): fix this machine's clock"
        if abs(self.shown()) > NOTABLE:
            return f"{describe(self.shown())}; bblogin compensates"
        return None
