"""IdFollower: which ids a cache re-reads when transactions may commit them out of order."""

from __future__ import annotations

from mcp_memory_server.storage.catchup import IdFollower


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_hole_below_the_newest_id_is_read_again_until_it_fills() -> None:
    """After ids 1, 2, 5 the next read asks for 3..4 and above 5; a late 4 is new once, then 3 still is."""
    follower = IdFollower()
    assert [follower.take(i) for i in (1, 2, 5)] == [True, True, True]
    assert follower.condition("seq") == ("(seq > ? OR seq BETWEEN ? AND ?)", [5, 3, 4])
    assert follower.take(4) and not follower.take(4) and not follower.take(5)
    assert follower.gaps == [(3, 3)]
    assert follower.take(3)
    assert follower.condition("seq") == ("(seq > ?)", [5])


def test_holes_are_given_up_after_the_horizon_and_beyond_the_most_kept() -> None:
    """A hole no transaction filled within the horizon is not read again; only the newest holes are kept."""
    clock = Clock()
    follower = IdFollower(horizon=10.0, max_gaps=2, clock=clock)
    for seq in (2, 4, 6):  # holes 1, 3, 5: the oldest goes
        follower.take(seq)
    assert follower.gaps == [(3, 3), (5, 5)]
    clock.now = 11.0
    assert follower.condition("seq") == ("(seq > ?)", [6])
    assert not follower.take(5)
