"""Exponential backoff: the one rule every retry of the network waits by."""

import math
import random


def pause(attempt, first, most=math.inf, jitter=0.0):
    """Seconds to wait after failed attempt number `attempt` (1, 2, ...):
    `first`, doubling each time, at most `most`, spread by +/- `jitter`
    (0.2: within 20 %) so that many waiting at once do not retry at once."""
    seconds = min(most, first * 2.0 ** min(attempt - 1, 64))  # past 2**64 every rule is at `most`
    return seconds * random.uniform(1 - jitter, 1 + jitter) if jitter else seconds
