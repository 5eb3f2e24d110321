"""The referral state machine: the only legal moves, and who makes them.

sent -> accepted | declined | cancelled
accepted -> in_progress | cancelled
in_progress -> completed | cancelled
"""

from dataclasses import dataclass

from shared.contract import events


@dataclass(frozen=True)
class Move:
    name: str
    sources: tuple
    target: str
    party: str  # "sender" or "receiver"
    event: str
    detail_field: str | None = None  # the body field that explains the move


MOVES = {
    move.name: move
    for move in (
        Move("accept", ("sent",), "accepted", "receiver", events.REFERRAL_ACCEPTED),
        Move("decline", ("sent",), "declined", "receiver", events.REFERRAL_DECLINED, "reason"),
        Move("start", ("accepted",), "in_progress", "receiver", events.REFERRAL_STARTED),
        Move("complete", ("in_progress",), "completed", "receiver", events.REFERRAL_COMPLETED, "outcome"),
        Move(
            "cancel",
            ("sent", "accepted", "in_progress"),
            "cancelled",
            "sender",
            events.REFERRAL_CANCELLED,
            "reason",
        ),
    )
}

INITIAL = "sent"
FINAL = frozenset({"declined", "completed", "cancelled"})
STATUSES = frozenset({INITIAL, *FINAL, *(move.target for move in MOVES.values())})
