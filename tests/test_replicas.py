"""ReplicaPool: concurrent callers never share a replica; idle replicas are reused."""

from __future__ import annotations

import threading

from facerec.faces.replicas import ReplicaPool


def test_concurrent_callers_each_get_their_own_replica_and_reuse_them() -> None:
    made: list[object] = []

    def make() -> object:
        made.append(object())
        return made[-1]

    pool = ReplicaPool(make)
    assert pool.created == 1  # built at once, so a bad file fails at load time
    inside = threading.Barrier(3)
    held: list[object] = []
    lock = threading.Lock()

    def work() -> None:
        with pool.borrow() as r:
            with lock:
                held.append(r)
            inside.wait(timeout=10)  # all three hold one at the same moment

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({id(r) for r in held}) == 3
    assert pool.created == 3
    with pool.borrow() as a, pool.borrow() as b:  # later callers reuse, never build more
        assert a is not b
    assert pool.created == 3


def test_a_replica_goes_back_even_when_the_block_raises() -> None:
    pool = ReplicaPool(object)
    try:
        with pool.borrow():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    with pool.borrow():
        pass
    assert pool.created == 1


def test_a_limit_makes_callers_past_it_wait_instead_of_building_more() -> None:
    pool = ReplicaPool(object, limit=1)
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with pool.borrow():
            order.append("first in")
            held.set()
            threading.Event().wait(0.2)
            order.append("first out")

    def second() -> None:
        held.wait(timeout=10)
        with pool.borrow():
            order.append("second in")

    a, b = threading.Thread(target=first), threading.Thread(target=second)
    a.start()
    b.start()
    a.join()
    b.join()
    assert order == ["first in", "first out", "second in"]
    assert pool.created == 1
