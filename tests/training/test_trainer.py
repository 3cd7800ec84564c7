"""The training loop on a tiny real set: checkpoints, determinism, resume, the registry,
the gallery's model pin, the collapse guard and the `facerec train` command."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch
from torch import nn

from facerec.errors import ModelError, ModelMismatchError
from facerec.evaluation.pairs import folder_pairs
from facerec.faces.embedding import Embedder
from facerec.faces.images import to_png
from facerec.gallery import Gallery, NewSample
from facerec.models.base import LoadedModel, sha256_file
from facerec.models.dlib_resnet import DLIB_SPEC, DLIB_TEMPLATE
from facerec.models.registry import load_model
from facerec.models.runners import TorchBackbone
from facerec.training import cli as train_cli
from facerec.training.checkpoint import load_checkpoint
from facerec.training.data import ChipSet, PairChips, Preparation, folder_items, load_or_build
from facerec.training.trainer import (
    LOSSES,
    OPTIMIZERS,
    SCHEDULES,
    CollapseGuard,
    EmbeddingCollapseError,
    TrainConfig,
    TrainingError,
    fold_affine_scales,
    layer_units,
    lr_factor,
    resume_config,
    select_trainable,
    train,
)

from ..conftest import shared_file

PEOPLE, PHOTOS = 6, 6
SESSION_CACHE = "facerec-chip-cache"  # shared with test_data_cache.py
#: Two steps of 3 identities x 2 photos, only the last block and the fc layer trained.
TINY = TrainConfig(p=3, k=2, epochs=1, steps_per_epoch=2, train_last=1, lr=1e-3, seed=7)


@pytest.fixture(scope="module")
def att_dir(shared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = shared_file(shared, "att_faces")
    dst = tmp_path_factory.mktemp("att-train")
    for i in range(1, PEOPLE + 1):
        (dst / f"s{i}").mkdir()
        for j in range(1, PHOTOS + 1):
            shutil.copyfile(src / f"s{i}" / f"{j}.pgm", dst / f"s{i}" / f"{j}.pgm")
    return dst


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.getbasetemp() / SESSION_CACHE
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="module")
def chips(att_dir: Path, cache_dir: Path) -> ChipSet:
    return load_or_build(folder_items(att_dir), Preparation(DLIB_TEMPLATE), cache_dir=cache_dir)


@pytest.fixture(scope="module")
def validation(chips: ChipSet, att_dir: Path) -> PairChips:
    """All-pairs validation over the same chips (no detection): checks the plumbing, not generalisation."""
    people = {n: [att_dir / p for p in chips.paths if p.startswith(f"{n}/")] for n in chips.names}
    pairs = folder_pairs(people, folds=3, seed=0)
    row = {att_dir / p: i for i, p in enumerate(chips.paths)}
    return PairChips(
        chips=chips,
        a=np.array([row[p.a] for p in pairs]),
        b=np.array([row[p.b] for p in pairs]),
        same=np.array([p.same for p in pairs]),
        folds=np.array([p.fold for p in pairs]),
    )


@pytest.fixture(scope="module")
def run1(chips: ChipSet, validation: PairChips, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("run1")
    from dataclasses import replace

    result = train(chips, replace(TINY, save_every=1), out, validation=validation)
    assert result.steps == 2 and result.checkpoint == out / "epoch-001.pt"
    assert result.initial_validation is not None and result.history[0].validation is not None
    return out


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).state_dict


def test_checkpoint_metadata(run1: Path, chips: ChipSet) -> None:
    assert sorted(p.name for p in run1.glob("*.pt")) == [
        "epoch-001.pt",
        "last.pt",
        "step-000001.pt",
    ]
    meta = load_checkpoint(run1 / "epoch-001.pt").meta
    assert meta.model == "dlib-resnet-v1" and meta.architecture == "DlibResNet"
    assert meta.embedding_dim == 128
    assert meta.data_fingerprint == chips.fingerprint
    assert meta.identities_sha256 == chips.identities_sha256()
    assert (meta.n_identities, meta.n_images) == (PEOPLE, PEOPLE * PHOTOS)
    assert (meta.epoch, meta.step, meta.step_in_epoch) == (1, 2, 0)
    assert meta.loss == {"name": "batch-hard", "margin": 0.2, "distance": "euclidean"}
    assert np.isfinite(meta.metrics["loss"]) and 0.0 <= meta.metrics["active_fraction"] <= 1.0
    assert 0.5 <= meta.metrics["val_auc"] <= 1.0 and "val_accuracy" in meta.metrics
    assert TrainConfig.from_dict(meta.config) == TrainConfig.from_dict(
        {**TINY.to_dict(), "save_every": 1}
    )
    assert meta.base_weights_sha256 == load_model("dlib-resnet-v1").weights_sha256
    mid = load_checkpoint(run1 / "step-000001.pt").meta
    assert (mid.epoch, mid.step, mid.step_in_epoch) == (0, 1, 1)
    assert sha256_file(run1 / "last.pt") == sha256_file(run1 / "epoch-001.pt")
    # Only the last block and the fc layer moved.
    base_module = load_model("dlib-resnet-v1", trainable=True).module
    fold_affine_scales(base_module)  # the run starts from the same function, rescaled
    base = base_module.state_dict()
    tuned = _weights(run1 / "epoch-001.pt")
    changed = {
        k.split(".")[0] + ("." + k.split(".")[1] if k.startswith("blocks") else "")
        for k in base
        if not torch.equal(base[k], tuned[k])
    }
    assert changed == {"blocks.13", "fc"}


def test_same_seed_same_weights_and_resume_continues(
    run1: Path, chips: ChipSet, tmp_path: Path
) -> None:
    from dataclasses import replace

    again = train(chips, replace(TINY, save_every=1), tmp_path / "again")
    ref = _weights(run1 / "epoch-001.pt")
    assert all(torch.equal(ref[k], v) for k, v in _weights(again.checkpoint).items())

    # Resume from the mid-epoch checkpoint: one more step, and the weights of the uninterrupted run.
    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    config = resume_config(run1 / "step-000001.pt")
    result = train(chips, config, resumed_dir, resume=run1 / "step-000001.pt")
    assert result.steps == 2 and result.history[0].steps == 1
    meta = load_checkpoint(result.checkpoint).meta
    assert (meta.epoch, meta.step) == (1, 2)
    assert all(torch.equal(ref[k], v) for k, v in _weights(result.checkpoint).items())


def test_resume_refuses_other_data_or_options(run1: Path, chips: ChipSet, tmp_path: Path) -> None:
    ck = run1 / "step-000001.pt"
    config = resume_config(ck)
    with pytest.raises(TrainingError, match="other data"):
        train(chips.exclude({"s6"}), config, tmp_path, resume=ck)
    from dataclasses import replace

    with pytest.raises(TrainingError, match="lr"):
        train(chips, replace(config, lr=1.0), tmp_path, resume=ck)
    with pytest.raises(TrainingError, match="cannot change margin"):
        resume_config(ck, margin=0.5)
    with pytest.raises(TrainingError, match="already 1 epochs"):
        train(chips, config, tmp_path, resume=run1 / "epoch-001.pt")


def test_checkpoint_loads_through_registry_and_gallery_refuses_it(
    run1: Path, chips: ChipSet, tmp_path: Path
) -> None:
    ckpt = run1 / "epoch-001.pt"
    tuned = load_model("dlib-resnet-v1", weights=ckpt)
    original = load_model("dlib-resnet-v1")
    assert tuned.weights_sha256 == sha256_file(ckpt) != original.weights_sha256
    assert tuned.identity.name == original.identity.name == "dlib-resnet-v1"
    emb = Embedder(tuned).embed(chips.chips[:5])
    assert emb.shape == (5, 128) and np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(emb, Embedder(original).embed(chips.chips[:5]))
    # The threshold its validation pairs chose comes with it; a bare state dict keeps the default.
    val_threshold = load_checkpoint(ckpt).meta.metrics["val_threshold"]
    assert tuned.spec.threshold == pytest.approx(val_threshold) and -1 <= val_threshold <= 1
    assert original.spec.threshold == DLIB_SPEC.threshold
    bare = tmp_path / "bare.pt"
    torch.save(load_checkpoint(ckpt).state_dict, bare)
    assert load_model("dlib-resnet-v1", weights=bare).spec.threshold == DLIB_SPEC.threshold
    # By content too, whatever the suffix.
    renamed = tmp_path / "tuned.weights"
    shutil.copyfile(ckpt, renamed)
    assert load_model("dlib-resnet-v1", weights=renamed).weights_sha256 == tuned.weights_sha256
    bad = tmp_path / "bad.pt"
    torch.save({"state_dict": {"fc.weight": torch.zeros(3, 3)}}, bad)
    with pytest.raises(ModelError, match="does not fit dlib-resnet-v1"):
        load_model("dlib-resnet-v1", weights=bad)

    sample = NewSample(
        embedding=Embedder(original).embed(chips.chips[:1])[0],
        crop_png=to_png(chips.chips[0]),
        crop_landmarks=tuple((float(x), float(y)) for x, y in DLIB_TEMPLATE.points),
        source="s1/1.pgm",
        content_sha256="0" * 64,
        box=(0.0, 0.0, 92.0, 112.0),
        det_score=0.99,
        quality={},
    )
    with Gallery.open(tmp_path / "g.db") as gallery:
        gallery.enroll("s1", [sample], original.identity)
        with pytest.raises(ModelMismatchError):
            gallery.check_model(tuned.identity)
        with pytest.raises(ModelMismatchError):
            gallery.enroll("s2", [sample], tuned.identity)


class Constant(nn.Module):
    """Every face maps to the same vector: the collapsed state the guard must catch."""

    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(1, 128)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.mean(dim=(1, 2, 3))[:, None] * 0.0)


def test_collapse_guard_stops_a_collapsed_run(chips: ChipSet, tmp_path: Path) -> None:
    model = LoadedModel(DLIB_SPEC, TorchBackbone(Constant()), "0" * 64)
    config = TrainConfig(p=2, k=2, epochs=1, collapse_patience=3, augment=False)
    with pytest.raises(EmbeddingCollapseError, match="collapsed to a single point") as info:
        train(chips, config, tmp_path / "out", model=model)
    assert "step 3" in str(info.value) and "Lower --lr" in str(info.value)
    assert not list((tmp_path / "out").glob("*.pt"))  # nothing collapsed was saved

    guard = CollapseGuard(1e-3, patience=2)
    spread = torch.nn.functional.normalize(torch.randn(8, 16), dim=1)
    point = torch.nn.functional.normalize(torch.ones(8, 16), dim=1)
    assert not guard.update(point) and guard.update(point)
    assert not guard.update(spread) and guard.streak == 0


def test_freezing_units_and_schedule() -> None:
    module = load_model("dlib-resnet-v1", trainable=True).module
    x = torch.randn(2, 3, 150, 150) * 0.3
    with torch.no_grad():
        before = module(x)
        assert fold_affine_scales(module) == 1 + 2 * 14
        assert torch.allclose(module(x), before, atol=1e-4)  # the same function
    assert float(module.blocks[0].affine1.gamma.detach().abs().max()) == 1.0  # type: ignore[union-attr]
    names = [n for n, _ in layer_units(module)]
    assert names[:3] == ["stem_conv", "stem_affine", "blocks.0"] and names[-2:] == [
        "blocks.13",
        "fc",
    ]
    select_trainable(module, train_last=0, freeze_until=None)
    assert {n.split(".")[0] for n, p in module.named_parameters() if p.requires_grad} == {"fc"}
    select_trainable(module, train_last=None, freeze_until="blocks.12")
    trainable = {n.rsplit(".", 2)[0] for n, p in module.named_parameters() if p.requires_grad}
    assert trainable == {"blocks.12", "blocks.13", "fc"}
    with pytest.raises(TrainingError, match=r"no layer 'blocks\.99'"):
        select_trainable(module, train_last=None, freeze_until="blocks.99")

    f = lr_factor(TrainConfig(epochs=2, warmup_steps=2), steps_per_epoch=10)
    assert f(0) == pytest.approx(1 / 3) and f(2) == pytest.approx(1.0)
    assert f(19) < 0.01 and f(11) < f(5)
    g = lr_factor(TrainConfig(epochs=3, schedule="step", warmup_steps=0, lr_gamma=0.5), 4)
    assert [g(s) for s in (0, 4, 8)] == [1.0, 0.5, 0.25]
    with pytest.raises(TrainingError, match="unknown loss"):
        TrainConfig(loss="hinge")  # type: ignore[arg-type]


def test_cli_choices_match_trainer() -> None:
    assert get_args(train_cli.LossChoice) == LOSSES
    assert get_args(train_cli.OptimizerChoice) == OPTIMIZERS
    assert get_args(train_cli.ScheduleChoice) == SCHEDULES


@pytest.mark.slow  # ~30 s here: `facerec train` in a subprocess (start-up and model load)
def test_train_command(
    att_dir: Path, cache_dir: Path, chips: ChipSet, tmp_path: Path, cli_env: dict[str, str]
) -> None:
    names = tmp_path / "exclude.txt"
    names.write_text("s6\n")
    out = tmp_path / "ckpt"
    args = [sys.executable, "-m", "facerec", "train", str(att_dir), "--out", str(out)]
    args += ["--cache", str(cache_dir), "--p", "3", "--k", "2", "--epochs", "1"]
    args += ["--steps-per-epoch", "1", "--train-last", "0", "--exclude-list", str(names), "--json"]
    r = subprocess.run(args, env=cli_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert report["data"]["cache_reused"] is True  # the chips were not detected again
    assert report["data"]["identities"] == PEOPLE - 1 and report["data"]["excluded_identities"] == 1
    assert report["result"]["steps"] == 1 and report["config"]["train_last"] == 0
    meta = load_checkpoint(out / "last.pt").meta
    assert meta.n_identities == PEOPLE - 1 and meta.data_fingerprint == chips.fingerprint

    r = subprocess.run(
        [sys.executable, "-m", "facerec", "train", str(att_dir), "--out", str(out), "--fold", "1"],
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert r.returncode == 2 and "--exclude-pairs and --fold go together" in r.stderr


@pytest.mark.parametrize("loss", LOSSES)
def test_every_loss_gives_a_finite_loss_and_an_active_fraction(loss: str) -> None:
    from facerec.training.trainer import Objective

    torch.manual_seed(0)
    emb = torch.nn.functional.normalize(torch.randn(12, 16, requires_grad=True), dim=1)
    labels = torch.arange(4).repeat_interleave(3)
    value, active = Objective(loss, 0.3, "euclidean")(emb, labels)  # type: ignore[arg-type]
    value.backward()
    assert torch.isfinite(value) and value > 0 and 0.0 < active <= 1.0
