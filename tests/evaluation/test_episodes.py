"""Every few-shot head on shared episodes: the open-set metric by hand, splits, the comparison."""

from __future__ import annotations

import numpy as np
import pytest

from facerec.evaluation.episodes import compare_heads, open_set_dir, split_people
from facerec.evaluation.fewshot import run_episodes, sample_episodes
from facerec.evaluation.fewshot_heads import EpisodicTraining, HeadKind


def test_open_set_dir_by_hand() -> None:
    """2 episodes, 3 known queries and 50 unknown ones each (+ one padded slot).

    FPIR 1e-2 of 100 unknown queries lets one through: the threshold is the
    second-highest unknown score, 0.90, and a query must score *above* it.
    """
    unknown0 = [0.95] + [0.1] * 49
    unknown1 = [0.90] + [0.2] * 49
    best = np.array(
        [
            [0.99, 0.92, 0.50, *unknown0, 0.999],  # the last slot is padding
            [0.91, 0.90, 0.97, *unknown1, 0.999],
        ]
    )
    pred = np.zeros_like(best, dtype=np.intp)
    pred[0, :3] = [0, 0, 2]  # the 0.92 query is given the wrong person
    pred[1, :3] = [0, 1, 2]
    labels = np.full(best.shape, -1, dtype=np.intp)
    labels[:, :3] = [0, 1, 2]
    mask = np.ones(best.shape, dtype=bool)
    mask[:, -1] = False
    r = open_set_dir(best, pred, labels, mask, fpir=1e-2, bootstrap=200, seed=0)
    assert r is not None
    assert r.threshold == pytest.approx(0.90)
    assert r.fpir == pytest.approx(0.01)  # 0.95 passes, 0.90 does not (not above)
    # right and above 0.90: 0.99, 0.91 and 0.97; not 0.92 (wrong person), 0.50, 0.90
    assert r.dir == pytest.approx(3 / 6)
    assert (r.known_queries, r.unknown_queries) == (6, 100)
    assert r.ci_low <= r.dir <= r.ci_high and r.ci_high - r.ci_low > 0
    again = open_set_dir(best, pred, labels, mask, fpir=1e-2, bootstrap=200, seed=0)
    assert again == r
    # 99 unknown queries cannot resolve 1e-2
    mask[1, 3] = False
    assert open_set_dir(best, pred, labels, mask, fpir=1e-2) is None


def test_split_people_is_a_seeded_partition() -> None:
    names = [f"p{i}" for i in range(11)]
    train, evaluated = split_people(names, seed=3)
    assert not train & evaluated and train | evaluated == set(names)
    assert len(evaluated) == 5
    assert split_people(list(reversed(names)), seed=3) == (train, evaluated)
    assert split_people(names, seed=4) != (train, evaluated)


def people(n: int, per_person: int, *, seed: int, prefix: str) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n, 1, 16))
    x = centres + 0.9 * rng.normal(size=(n, per_person, 16))
    return x.reshape(-1, 16).astype(np.float32), np.repeat(
        [f"{prefix}{i}" for i in range(n)], per_person
    )


QUICK = EpisodicTraining(steps=3, batch=4)


def test_compare_heads_reports_every_head_on_the_same_episodes() -> None:
    ev, ev_names = people(12, 8, seed=1, prefix="test")
    tr, tr_names = people(20, 8, seed=2, prefix="train")
    report = compare_heads(
        ev, ev_names, tr, tr_names, episodes=40, seed=7, train_config=QUICK, bootstrap=50
    )
    assert (report.evaluated_people, report.training_people) == (12, 20)
    assert report.shots == (1, 5)
    for head in HeadKind:
        for k in (1, 5):
            r = report.result(head, k)
            assert r is not None, (head, k)
            assert 0.2 < r.closed.accuracy <= 1 and r.closed.ci95 >= 0
            assert r.open_set is not None and 0 <= r.open_set.dir <= 1
            assert r.open_set.fpir <= 1e-2
            assert (r.train_seconds > 0) == (head.learned or head is HeadKind.GAUSSIAN)
    # The fixed heads see exactly the episodes of run_episodes for the same seed.
    for k in (1, 5):
        for head, finetune in ((HeadKind.PROTOTYPES, False), (HeadKind.FINETUNED, True)):
            r = report.result(head, k)
            ref = run_episodes(ev, ev_names, k_shot=k, episodes=40, finetune=finetune, seed=7)
            assert r is not None
            assert r.closed.accuracy == pytest.approx(ref.mean_accuracy, abs=1e-6)  # float32 there
            assert r.closed.ci95 == pytest.approx(ref.ci95, abs=1e-6)
    table = report.table()
    for head in HeadKind:
        assert head.value in table
    assert "5-way 1-shot" in table and "open 5-shot DIR@FPIR=1e-02" in table


def test_compare_heads_refuses_training_on_evaluated_people() -> None:
    ev, names = people(12, 8, seed=1, prefix="p")
    with pytest.raises(ValueError, match="12 people are both evaluated and trained on"):
        compare_heads(ev, names, ev, names, episodes=5, seed=0, train_config=QUICK)


def test_small_sets_drop_what_they_cannot_measure() -> None:
    # 7 people: 5-way closed-set works, open-set (5 known + 5 unknown) does not;
    # with 3 photos each, 5-shot is impossible.
    ev, ev_names = people(7, 3, seed=1, prefix="test")
    tr, tr_names = people(10, 8, seed=2, prefix="train")
    report = compare_heads(
        ev, ev_names, tr, tr_names, episodes=10, seed=0, train_config=QUICK, bootstrap=10
    )
    assert report.shots == (1,)
    assert all(r.open_set is None for r in report.results)
    few, few_names = people(4, 3, seed=1, prefix="test")
    with pytest.raises(ValueError, match="need 5 evaluated people with at least 2 photos, found 4"):
        compare_heads(few, few_names, tr, tr_names, episodes=10, seed=0, train_config=QUICK)


def test_open_set_episodes_keep_unknown_people_out_of_the_support() -> None:
    labels = np.repeat(np.arange(12), [1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11])
    idx = sample_episodes(
        labels, 12, n_way=5, k_shot=2, n_query=4, episodes=60,
        rng=np.random.default_rng(0), n_unknown=3,
    )  # fmt: skip
    for e in range(60):
        known = set(labels[idx.support[e]])
        unknown = labels[idx.unknown[e][idx.unknown_mask[e]]]
        assert not known & set(unknown)
        assert len(set(unknown)) == 3
        assert 1 <= len(unknown) <= 12
    # n_unknown=0 leaves the closed-set draws as they were
    closed = sample_episodes(
        labels, 12, n_way=5, k_shot=2, n_query=4, episodes=60, rng=np.random.default_rng(0)
    )
    assert closed.unknown.shape == (60, 0)
    with pytest.raises(ValueError, match="need 10 people, found 9"):
        sample_episodes(
            labels[labels < 9], 9, n_way=5, k_shot=1, n_query=4, episodes=1,
            rng=np.random.default_rng(0), n_unknown=5,
        )  # fmt: skip
