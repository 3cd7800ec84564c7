"""The before/after table over LFW folds from `scripts/finetune_lfw.py`'s JSON files.

    python scripts/finetune_summary.py bench-results/finetune_lfw_fold?.json
    python scripts/finetune_summary.py bench-results/finetune_lfw_fold?_lr1e-5.json --json out.json

One row per fold (same 600 pairs, same chips, before and after), then the mean
over folds and the mean paired difference with its spread: on 600 pairs one
pair is 0.17 points of accuracy, so a difference smaller than the fold-to-fold
spread of the differences is noise, not an improvement.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

COLUMNS = (("accuracy", "acc %", 100), ("auc", "AUC", 1), ("eer", "EER %", 100))


def _row(m: dict[str, object]) -> dict[str, float]:
    tar = m["tar_at_far"]
    assert isinstance(tar, dict)
    out = {k: float(m[k]) for k, _, _ in COLUMNS}  # type: ignore[arg-type]
    out["tar@1e-2"] = float(tar["1e-02"])
    out["threshold"] = float(m["threshold"])  # type: ignore[arg-type]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("files", nargs="+", type=Path)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    runs = sorted((json.loads(p.read_text()) for p in args.files), key=lambda r: r["fold"])
    keys = ("accuracy", "auc", "eer", "tar@1e-2", "threshold")
    table = []
    print("| fold | model | accuracy % | AUC | EER % | TAR@FAR=1e-2 % | threshold |")
    print("|---|---|---|---|---|---|---|")
    for r in runs:
        b, a = _row(r["before"]), _row(r["after"])
        table.append({"fold": r["fold"], "before": b, "after": a})
        for label, m in (("before", b), ("fine-tuned", a)):
            print(
                f"| {r['fold']} | {label} | {100 * m['accuracy']:.2f} | {m['auc']:.4f} | "
                f"{100 * m['eer']:.2f} | {100 * m['tar@1e-2']:.2f} | {m['threshold']:.3f} |"
            )
    summary: dict[str, dict[str, float]] = {}
    for k in keys:
        before = [t["before"][k] for t in table]
        after = [t["after"][k] for t in table]
        diff = [x - y for x, y in zip(after, before, strict=True)]
        summary[k] = {
            "before_mean": statistics.fmean(before),
            "after_mean": statistics.fmean(after),
            "diff_mean": statistics.fmean(diff),
            "diff_std": statistics.stdev(diff) if len(diff) > 1 else 0.0,
            "folds_improved": sum(d > 0 for d in diff),
        }
    s = summary
    print(
        f"\nmean over {len(table)} folds: accuracy {100 * s['accuracy']['before_mean']:.2f} -> "
        f"{100 * s['accuracy']['after_mean']:.2f} % (paired difference "
        f"{100 * s['accuracy']['diff_mean']:+.2f} ± {100 * s['accuracy']['diff_std']:.2f}, "
        f"better on {s['accuracy']['folds_improved']} of {len(table)}); AUC "
        f"{s['auc']['before_mean']:.4f} -> {s['auc']['after_mean']:.4f}; EER "
        f"{100 * s['eer']['before_mean']:.2f} -> {100 * s['eer']['after_mean']:.2f} %; "
        f"TAR@1e-2 {100 * s['tar@1e-2']['before_mean']:.2f} -> "
        f"{100 * s['tar@1e-2']['after_mean']:.2f} %"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"folds": table, "summary": summary}, indent=2) + "\n")
        print(f"written: {args.json}")


if __name__ == "__main__":
    main()
