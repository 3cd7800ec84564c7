"""Telling unknown visitors apart (`RecentStrangers`): the memory's rules on plain vectors.

The end-to-end checks on real faces are in tests/door/test_service.py (three strangers in
turn, the first back within the cooldown, a live stranger turning his head).
"""

from __future__ import annotations

import numpy as np

from facerec.camera.strangers import MAX_STRANGERS, RecentStrangers


def unit(*xs: float) -> np.ndarray:
    v = np.zeros(8, np.float32)
    v[: len(xs)] = xs
    return v / np.linalg.norm(v)


A, B, C = unit(1), unit(0, 1), unit(0, 0, 1)


def test_different_faces_are_different_strangers_and_each_is_announced_once() -> None:
    mem = RecentStrangers(threshold=0.5, cooldown_s=60)
    numbers = [mem.see(A, 0), mem.see(B, 1), mem.see(C, 2)]
    assert len(set(numbers)) == 3
    assert [mem.announce(n) for n in numbers] == [True] * 3
    assert mem.see(A, 10) == numbers[0] and mem.announce(numbers[0]) is False  # back: same visit


def test_a_stranger_is_forgotten_after_the_cooldown_without_being_seen() -> None:
    mem = RecentStrangers(threshold=0.5, cooldown_s=5)
    first = mem.see(A, 0)
    mem.announce(first)
    assert mem.see(A, 4) == first  # seen again: the cooldown starts anew
    again = mem.see(A, 8.5)
    assert again == first
    later = mem.see(A, 14)  # 5.5 s unseen: a new visit
    assert later != first and mem.announce(later) is True


def test_a_turning_head_is_matched_on_its_recent_views_and_halves_are_merged() -> None:
    mem = RecentStrangers(threshold=0.5, cooldown_s=60)
    front, half, side = unit(1, 0), unit(1, 1), unit(0, 1)  # cos(front, side) = 0
    n = mem.see(front, 0)
    assert mem.see(half, 1) == n and mem.see(side, 2) == n  # side matches the half view
    mem = RecentStrangers(threshold=0.5, cooldown_s=60)
    a, b = mem.see(front, 0), mem.see(side, 1)  # seen from two sides: two strangers, for now
    assert a != b and mem.announce(b) is True
    assert mem.see(half, 2) == a and len(mem) == 1  # a view between them: one person
    assert mem.announce(a) is False  # already announced (as b)


def test_memory_is_bounded() -> None:
    mem = RecentStrangers(threshold=0.99, cooldown_s=1e9)
    rng = np.random.default_rng(0)
    for t in range(MAX_STRANGERS + 10):
        mem.see(rng.normal(size=128).astype(np.float32), float(t))
    assert len(mem) == MAX_STRANGERS
