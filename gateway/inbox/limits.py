"""Limits on asking for sign-in links: per e-mail address (known or not, so
a 429 tells nothing about who is a coordinator) and per client address.
Counted where the API's limits are (gateway.limits: Redis, or memory)."""

import hashlib
import math
import time

from limits import parse
from limits.strategies import MovingWindowRateLimiter


class SignInLimits:
    def __init__(self, settings, storage):
        """`storage`: the API limits' own (gateway.limits), so that one store
        and one "Redis is away" line serve both."""
        self.limiter = MovingWindowRateLimiter(storage)
        self.per_address = parse(settings["SIGN_IN_LIMIT_PER_ADDRESS"])
        self.per_client = parse(settings["SIGN_IN_LIMIT_PER_CLIENT"])

    def retry_after(self, address, client):
        """None while both limits allow one more request (which is then
        counted against both), else the seconds until they do. A request
        refused by one limit counts against neither: a client over its own
        limit cannot spend an address's budget and lock its coordinator out."""
        address_key = hashlib.sha256(address.strip().casefold().encode()).hexdigest()
        counted = ((self.per_address, "address:" + address_key), (self.per_client, "client:" + client))
        waits = []
        for limit, key in counted:
            if not self.limiter.test(limit, key):
                reset, _ = self.limiter.get_window_stats(limit, key)
                waits.append(max(1, math.ceil(reset - time.time())))
        if waits:
            return max(waits)
        for limit, key in counted:
            self.limiter.hit(limit, key)
        return None
