"""`facerec camera`: verify a claim, or watch for enrolled people, on a video stream.

Exit codes follow `facerec verify`, because a door script acts on them:
claim mode exits 0 when the claim is accepted and 1 when it is rejected
(including "presentation attack") or no decision was reached in time; watch
mode exits 0 when the stream ends (with `--once`: 0 for a recognised person,
1 for an unknown face or no decision); any error exits 2 with one line on
stderr.

Claims and watching check liveness by default (`facerec.liveness`): a watch
may be wired to a lock, so a face that is not live is an `attack` there, never
`identified`. The anti-spoofing
weights are a pinned download, or `--liveness-weights DIR`; when they are
missing the command fails and says how to get them or to pass `--no-liveness`.
It never skips the check silently.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from contextlib import ExitStack
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facerec.camera.audit import AuditLog
from facerec.camera.events import POSITIVE, DecisionEvent, Webhook
from facerec.camera.window import DEFAULT_COOLDOWN_S, WindowRule
from facerec.cli_common import (
    EXIT_OK,
    EXIT_REJECTED,
    DbOpt,
    DetectorOpt,
    IndexOpt,
    JsonOpt,
    MinFaceOpt,
    ModelOpt,
    ThreadsOpt,
    ThresholdOpt,
    WeightsOpt,
    fail,
    make_settings,
    session,
)
from facerec.errors import ModelError
from facerec.extras import TORCH_HINT, has_torch
from facerec.gallery.index_kind import IndexKind
from facerec.liveness.verdict import DEFAULT_MIN_REAL

if TYPE_CHECKING:  # torch-heavy: imported when a camera actually runs
    from facerec.camera.door import DoorCamera
    from facerec.camera.region import Region
    from facerec.liveness.challenge import Turn
    from facerec.liveness.passive import AntiSpoof
    from facerec.liveness.policy import LivenessPolicy

log = logging.getLogger(__name__)

#: Claim mode gives up after this much stream time unless --timeout-s says otherwise.
DEFAULT_CLAIM_TIMEOUT_S = 30.0


class Challenge(StrEnum):
    """Active liveness challenges a claim can ask for."""

    TURN = "turn"


def camera(
    source: Annotated[
        str,
        typer.Option(
            "--source",
            help="Camera device index (0, 1, ...), a video file, or a stream URL (rtsp://...).",
        ),
    ],
    claim: Annotated[
        str | None, typer.Option("--claim", help="Verify this enrolled person (1:1).")
    ] = None,
    watch: Annotated[
        bool, typer.Option("--watch", help="Recognise anyone enrolled (1:N), or call it unknown.")
    ] = False,
    k: Annotated[int, typer.Option("--k", help="Agreeing frames needed to decide.", min=1)] = 3,
    n: Annotated[int, typer.Option("--n", help="Out of the last N voting frames.", min=1)] = 5,
    window_s: Annotated[
        float, typer.Option("--window-s", help="Those frames lie within this many seconds.")
    ] = 10.0,
    fps: Annotated[
        float, typer.Option("--fps", help="Frames processed per second of stream time, at most.")
    ] = 5.0,
    timeout_s: Annotated[
        float | None,
        typer.Option(
            "--timeout-s",
            help="Give up after this much stream time [claim: 30; watch: until the stream ends].",
        ),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="Watch mode: stop after the first decision.")
    ] = False,
    realtime: Annotated[
        bool,
        typer.Option(
            "--realtime",
            help="Play a video file at its own speed, dropping frames like a live camera.",
        ),
    ] = False,
    max_side: Annotated[
        int,
        typer.Option("--max-side", help="Downscale frames to this longer side (0: never).", min=0),
    ] = 1280,
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST each decision as JSON to this URL.")
    ] = None,
    webhook_timeout_s: Annotated[
        float, typer.Option("--webhook-timeout-s", help="Give a webhook POST this long.")
    ] = 2.0,
    save_images: Annotated[
        bool,
        typer.Option("--save-images", help="Keep a JPEG of the best face in the audit table."),
    ] = False,
    roi: Annotated[
        str | None,
        typer.Option(
            "--roi",
            help="Only faces centred in this region count: x1,y1,x2,y2 in fractions of the "
            "frame (0,0 the top left corner), e.g. 0.4,0.1,1,1.",
        ),
    ] = None,
    cooldown_s: Annotated[
        float,
        typer.Option(
            "--cooldown-s",
            help="Watch: a person is reported again only after this long out of view.",
        ),
    ] = DEFAULT_COOLDOWN_S,
    liveness: Annotated[
        bool,
        typer.Option(
            "--liveness/--no-liveness",
            help="Refuse faces that are not live (photos, screens); watch: report them as "
            "attack [default: on].",
        ),
    ] = True,
    liveness_weights: Annotated[
        Path | None,
        typer.Option(
            "--liveness-weights",
            help="Folder with the two MiniFASNet .pth files [default: download, SHA-256 pinned].",
        ),
    ] = None,
    require_motion: Annotated[
        bool,
        typer.Option(
            "--require-motion/--no-require-motion",
            help="Claim: liveness needs the head to move in depth, not just the CNN's word.",
        ),
    ] = True,
    liveness_threshold: Annotated[
        float,
        typer.Option("--liveness-threshold", help="Claim: least mean p(live) of the CNN."),
    ] = DEFAULT_MIN_REAL,
    challenge: Annotated[
        Challenge | None,
        typer.Option(
            "--challenge", help="Claim: ask for an action (turn: the head, left or right)."
        ),
    ] = None,
    threshold: ThresholdOpt = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    weights: WeightsOpt = None,
    min_face_size: MinFaceOpt = 40,
    detector: DetectorOpt = None,
    threads: ThreadsOpt = None,
    index: IndexOpt = IndexKind.AUTO,
    as_json: JsonOpt = False,
) -> None:
    """Decide who is at the door from a video stream: --claim NAME or --watch.

    Each decision is printed (one JSON line with --json), POSTed to --webhook
    and recorded in the gallery's audit table. Claim: exit 0 accepted, 1
    rejected or timed out.
    """
    if (claim is None) == (not watch):
        fail("give exactly one of --claim NAME and --watch", as_json=as_json, kind="UsageError")
    try:
        rule = WindowRule(k=k, n=n, window_s=window_s)
        if not fps > 0:
            raise ValueError(f"--fps must be positive, got {fps}")
        if timeout_s is not None and not timeout_s > 0:
            raise ValueError(f"--timeout-s must be positive, got {timeout_s}")
        if not webhook_timeout_s > 0:
            raise ValueError(f"--webhook-timeout-s must be positive, got {webhook_timeout_s}")
        if not cooldown_s >= 0:
            raise ValueError(f"--cooldown-s must not be negative, got {cooldown_s}")
        policy = _liveness_policy(
            claim, liveness, challenge, liveness_threshold, require_motion, liveness_weights
        )
        region = parse_region(roi) if roi is not None else None
    except ValueError as exc:
        fail(str(exc), as_json=as_json, kind="UsageError")
    if claim is not None and timeout_s is None:
        timeout_s = DEFAULT_CLAIM_TIMEOUT_S

    # The camera's OpenCV and the pipeline load here, not when `facerec --help` builds the CLI.
    from facerec.camera.door import DoorCamera, run
    from facerec.camera.stream import FrameSource, parse_source

    events: list[DecisionEvent] = []
    settings = make_settings(
        model, weights, threshold, min_face_size, detector, threads=threads, index=index
    )
    with session(db, settings, as_json=as_json) as fr, ExitStack() as stack:
        hook = Webhook(webhook, timeout_s=webhook_timeout_s) if webhook else None
        if hook is not None:
            stack.callback(hook.close)
        frames = stack.enter_context(
            FrameSource(parse_source(source), fps=fps, realtime=realtime or None, max_side=max_side)
        )
        door = DoorCamera(
            fr,
            frames.name,
            claim=claim,
            rule=rule,
            save_images=save_images,
            cooldown_s=cooldown_s,
            region=region,
        )
        _guard_liveness(door, policy, liveness_weights, claim)
        audit = AuditLog(fr.database)
        if policy is not None and policy.challenge is not None:
            _prompt(frames.name, policy.challenge, as_json)

        def deliver(event: DecisionEvent, image: bytes | None) -> None:
            event = dataclasses.replace(event, audit_id=audit.record(event, image))
            typer.echo(event.to_line() if as_json else _human(event))
            if hook is not None:
                hook.post(event)

        log.info(
            "%s: %s, %d of %d frames within %g s, %g fps, threshold %.4f",
            frames.name,
            f"claim {door.claim!r}" if door.claim else "watching",
            rule.k,
            rule.n,
            rule.window_s,
            fps,
            door.threshold,
        )
        events = run(door, frames, deliver, timeout_s=timeout_s, once=once)
    if claim is None and not once:
        raise typer.Exit(EXIT_OK)
    decided = events[-1].decision if events else None
    raise typer.Exit(EXIT_OK if decided in POSITIVE else EXIT_REJECTED)


def parse_region(text: str) -> Region:
    """`--roi x1,y1,x2,y2` as a region; ValueError, naming the option, for anything else."""
    from facerec.camera.region import Region  # numpy and the pipeline: not for `--help`

    parts = text.split(",")
    try:
        values = [float(p) for p in parts]
        if len(values) != 4:
            raise ValueError(f"{len(values)} numbers")
        return Region(*values)
    except ValueError as exc:
        raise ValueError(
            f"--roi must be x1,y1,x2,y2 in fractions of the frame (0 <= x1 < x2 <= 1, "
            f"0 <= y1 < y2 <= 1), got {text!r}: {exc}"
        ) from None


def _liveness_policy(
    claim: str | None,
    liveness: bool,
    challenge: Challenge | None,
    min_real: float,
    require_motion: bool,
    weights: Path | None,
) -> LivenessPolicy | None:
    """The liveness rules the options ask for (None: off); ValueError for options that clash."""
    if challenge is not None and (claim is None or not liveness):
        raise ValueError("--challenge needs --claim NAME and liveness on")
    if not liveness:
        return None
    from facerec.liveness.challenge import draw_turn
    from facerec.liveness.policy import LivenessPolicy

    turn = draw_turn() if challenge is Challenge.TURN else None
    policy = LivenessPolicy(min_real=min_real, require_motion=require_motion, challenge=turn)
    if weights is not None and not has_torch():
        raise ValueError(
            "--liveness-weights loads .pth files with PyTorch, which is not installed: "
            f"{TORCH_HINT} (or leave the option out: the shipped models need no PyTorch)"
        )
    return policy


def _guard_liveness(
    door: DoorCamera, policy: LivenessPolicy | None, weights: Path | None, claim: str | None
) -> None:
    """Give the door its liveness check, or say loudly that it has none."""
    from facerec.camera.liveness import LivenessTracker

    if policy is not None:
        door.enable_liveness(LivenessTracker(_antispoof(weights), policy, door.rule.window_s))
    else:
        log.warning("%s: liveness is off: a photo of %s opens this door", door.source,
                    claim or "anyone enrolled")  # fmt: skip


def _antispoof(weights: Path | None) -> AntiSpoof:
    """The anti-spoofing models, or a camera error that says how to get them or opt out."""
    from facerec.camera.door import CameraError
    from facerec.liveness.passive import AntiSpoof

    try:
        return AntiSpoof(weights)
    except ModelError as exc:
        raise CameraError(f"{exc} (or pass --no-liveness to claim without liveness)") from None


def _prompt(source: str, turn: Turn, as_json: bool) -> None:
    """Tell the person at the door what to do (stdout, for the door's display)."""
    if as_json:
        line = {"event": "challenge", "source": source, "challenge": "turn", "direction": turn.value,
                "prompt": turn.prompt}  # fmt: skip
        typer.echo(json.dumps(line, ensure_ascii=False))
    else:
        typer.echo(f"CHALLENGE: {turn.prompt}")


def _human(event: DecisionEvent) -> str:
    who = event.name or "unknown face"
    best = f"best cos {event.best_score:.4f}" if event.best_score is not None else "no face seen"
    text = (
        f"{event.decision.upper()} {who}: {best} (threshold {event.threshold:.4f}), "
        f"{event.votes} vote(s), {event.frames} frame(s), at {event.stream_time_s:.1f} s"
    )
    if event.reason:
        text += f"; {event.reason}"
    if event.liveness is not None:
        text += f"; liveness {event.liveness.verdict.value} ({event.liveness.reason})"
    return text


def register(app: typer.Typer) -> None:
    """Add the camera command to the main CLI."""
    app.command(name="camera")(camera)
