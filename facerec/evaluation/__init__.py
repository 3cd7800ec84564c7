"""Verification and identification metrics, and the pair protocols they are computed on."""
