"""Triplet fine-tuning of the default embedding on LFW, evaluated on a fold it never saw.

    python scripts/finetune_lfw.py                                  # fold 1, 2 epochs, last 2 blocks
    python scripts/finetune_lfw.py --fold 3 --epochs 2 --train-last 2 --json runs/fold3.json

Protocol (``../shared/data/lfw/pairs_dev.txt``, 5 identity-disjoint folds of 300
matched + 300 mismatched pairs):

* **training people**: every LFW identity with >= 2 photos that is *not named in
  fold K* (the other folds' people plus the people outside the pairs), at most
  ``--max-per-identity`` photos each (the first ones by file name). The chip
  cache covers all LFW identities with >= 2 photos, so rotating K reuses it;
  fold K's people are removed before any batch is drawn, and the script checks
  that no training identity appears in fold K.
* **evaluation**: fold K's 600 pairs, chips cut exactly as ``facerec evaluate``
  cuts them (central face; a missed face gets the set's mean landmarks), embedded
  through the production path (`Embedder`) with the original weights
  ("before") and with the fine-tuned checkpoint loaded through the model
  registry ("after"), so the same pairs and the same chips are compared.
* **figures**: k-fold accuracy across LFW folds is not defined on one fold, so
  accuracy here is **10-fold cross-validation within fold K** (pairs i, i+10, ...
  form a sub-fold; the threshold maximising accuracy on the other nine is
  applied to it; sub-folds share people, so the threshold is chosen on other
  pairs, not other people); plus ROC AUC, EER and TAR at FAR = 1e-2 (300
  negatives: the operating point allows 3 false accepts). The checkpoint is the
  last epoch's, never the best one on fold K, so fold K selects nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
from pathlib import Path

import torch

from facerec.detectors import DetectorConfig
from facerec.evaluation.pairs import read_lfw_pairs
from facerec.faces.embedding import Embedder
from facerec.models.dlib_resnet import DLIB_TEMPLATE
from facerec.models.registry import load_model
from facerec.training.data import (
    PairChips,
    Preparation,
    folder_items,
    lfw_fold_identities,
    load_or_build,
    load_pair_chips,
)
from facerec.training.trainer import PairMetrics, TrainConfig, train, verification_metrics

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def evaluate(weights: Path | None, chips_pairs: PairChips) -> PairMetrics:
    model = load_model("dlib-resnet-v1", weights)
    emb = Embedder(model).embed(chips_pairs.chips.chips)
    return verification_metrics(emb, chips_pairs)


def row(name: str, m: PairMetrics) -> str:
    tar = m.tar_at_far.get("1e-02", float("nan"))
    return (
        f"| {name} | {m.accuracy * 100:.2f} ± {m.accuracy_std * 100:.2f} | {m.auc:.4f} | "
        f"{m.eer * 100:.2f}% | {tar * 100:.2f}% | {m.threshold:.3f} |"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument(
        "--lfw", type=Path, default=SHARED / "lfw", help="LFW folder (images/, pairs_dev.txt)"
    )
    ap.add_argument(
        "--fold", type=int, default=1, help="1-based fold to evaluate (never trained on)"
    )
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--steps-per-epoch", type=int, default=None)
    ap.add_argument("--train-last", type=int, default=2)
    ap.add_argument("--loss", default="batch-hard")
    ap.add_argument("--margin", type=float, default=0.2)
    ap.add_argument("--distance", default="euclidean")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--optimizer", default="adamw")
    ap.add_argument("--p", type=int, default=16)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--max-per-identity", type=int, default=8)
    ap.add_argument("--min-face-size", type=int, default=20)
    ap.add_argument("--no-fold-scales", action="store_true", help="keep dlib's affine scales")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cache", type=Path, default=None, help="chip cache folder")
    ap.add_argument("--out", type=Path, default=Path("out/finetune-lfw"), help="checkpoint folder")
    ap.add_argument("--json", type=Path, default=None, help="write the results here")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    progress = sys.stderr.isatty()

    pairs_file = args.lfw / "pairs_dev.txt"
    images = args.lfw / "images"
    pairs = read_lfw_pairs(pairs_file)
    folds = sorted({p.fold for p in pairs})
    test_pairs = [p for p in pairs if p.fold == folds[args.fold - 1]]
    test_people = lfw_fold_identities(pairs_file, args.fold)
    detector = DetectorConfig(min_face_size=args.min_face_size)

    t0 = time.perf_counter()
    items = folder_items(images, min_images=2, max_per_identity=args.max_per_identity)
    chips = load_or_build(
        items, Preparation(DLIB_TEMPLATE, detector), cache_dir=args.cache, progress=progress
    )
    data = chips.exclude(test_people).with_min_chips(2)
    assert not set(data.names) & test_people, "a fold-K identity is in the training data"
    test = load_pair_chips(
        test_pairs, images, detector, DLIB_TEMPLATE, cache_dir=args.cache, progress=progress
    )
    prep_seconds = time.perf_counter() - t0

    before = evaluate(None, test)
    config = TrainConfig(
        loss=args.loss,
        margin=args.margin,
        distance=args.distance,
        p=args.p,
        k=args.k,
        epochs=args.epochs,
        steps_per_epoch=args.steps_per_epoch,
        lr=args.lr,
        optimizer=args.optimizer,
        train_last=args.train_last,
        fold_scales=not args.no_fold_scales,
        seed=args.seed,
    )
    out = args.out / f"fold{args.fold}"
    t1 = time.perf_counter()
    result = train(data, config, out, progress=progress)
    train_seconds = time.perf_counter() - t1
    after = evaluate(result.checkpoint, test)

    summary = {
        "fold": args.fold,
        "test_pairs": len(test),
        "test_photos": len(test.chips),
        "test_photos_without_face": len(test.chips.missed),
        "train_identities": len(data.names),
        "train_chips": len(data),
        "cache_photos": len(items),
        "cache_photos_without_face": len(chips.missed),
        "accuracy_protocol": "10-fold cross-validation within fold K (threshold on the other 9 sub-folds)",
        "config": config.to_dict(),
        "checkpoint": str(result.checkpoint),
        "steps": result.steps,
        "seconds_per_step": result.seconds_per_step,
        "trainable_parameters": result.trainable_parameters,
        "device": result.device,
        "torch_threads": torch.get_num_threads(),
        "prepare_seconds": prep_seconds,
        "train_seconds": train_seconds,
        "epochs": [
            {"epoch": e.epoch, "loss": e.loss, "active_fraction": e.active_fraction}
            for e in result.history
        ],
        "before": dataclasses.asdict(before),
        "after": dataclasses.asdict(after),
    }
    print(
        f"\nLFW pairs_dev fold {args.fold}: {len(test)} pairs ({len(test.chips.missed)} of "
        f"{len(test.chips)} photos without a detected face, fallback crop); trained on "
        f"{len(data)} chips of {len(data.names)} other identities, {result.steps} steps "
        f"({config.loss}, margin {config.margin}, lr {config.lr}, last {config.train_last} "
        f"blocks + fc), {result.seconds_per_step:.2f} s/step on {result.device}"
    )
    print("accuracy: 10-fold cross-validation within the fold\n")
    print("| model | accuracy % | AUC | EER | TAR@FAR=1e-2 | threshold |")
    print("|---|---|---|---|---|---|")
    print(row("dlib-resnet-v1 (before)", before))
    print(row(f"fine-tuned, {args.epochs} epoch(s)", after))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(summary, indent=2))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
