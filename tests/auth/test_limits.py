from stackyard.auth.limits import RateLimiter, Refusal, Reservation
from stackyard.auth.principal import Limit


class Clock:
    def __init__(self) -> None:
        self.now = 6000.0  # the start of a minute

    def __call__(self) -> float:
        return self.now


def test_requests_per_minute_and_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limits = [Limit("key", "k", rpm=2, tpm=None)]
    assert isinstance(limiter.admit(limits, 10), Reservation)
    assert isinstance(limiter.admit(limits, 10), Reservation)
    clock.now += 15
    refused = limiter.admit(limits, 10)
    assert refused == Refusal("key", "requests", 2, 45)
    clock.now += 60  # the previous minute still weighs 75%: 1.5 requests + 1 > 2
    assert isinstance(limiter.admit(limits, 10), Refusal)
    clock.now += 30  # now it weighs 25%
    assert isinstance(limiter.admit(limits, 10), Reservation)


def test_every_level_must_pass_and_a_refusal_gives_back_what_was_taken() -> None:
    limiter = RateLimiter(Clock())
    key = Limit("key", "k", rpm=10, tpm=None)
    team = Limit("team", "t", rpm=1, tpm=None)
    assert isinstance(limiter.admit([key, team], 1), Reservation)
    refused = limiter.admit([key, team], 1)
    assert isinstance(refused, Refusal)
    assert refused.scope == "team"
    # The key's counter got its request back: 9 more fit on the key alone.
    for _ in range(9):
        assert isinstance(limiter.admit([key], 1), Reservation)
    assert isinstance(limiter.admit([key], 1), Refusal)


def test_tokens_are_reserved_then_reconciled() -> None:
    limiter = RateLimiter(Clock())
    limits = [Limit("key", "k", rpm=None, tpm=1000)]
    first = limiter.admit(limits, 900)
    assert isinstance(first, Reservation)
    assert isinstance(limiter.admit(limits, 200), Refusal)
    limiter.reconcile(first, 100)  # it used far less than it reserved
    second = limiter.admit(limits, 200)
    assert isinstance(second, Reservation)
    assert (b"x-ratelimit-remaining-tokens", b"700") in second.headers
