"""Presentation-attack detection: is the face in front of the camera a live person?

Three cues, each its own module, each answering live / attack / undecided
(`verdict`): a passive anti-spoofing CNN on every frame (`passive`, with the
network in `minifasnet`), the parallax of the nose against the face plane
across frames (`parallax`), and an optional turn-your-head challenge
(`challenge`). `policy` says which cues a decision needs and combines them
over the frames of one decision.
"""
