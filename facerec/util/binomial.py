"""The Beta distribution's quantile for integer shapes: Clopper-Pearson intervals without SciPy.

Every verify and identify states the false-accept rate of its threshold with an
exact binomial interval (`facerec.decisions.operating.clopper_pearson`), whose bounds are
Beta quantiles. SciPy's ``betaincinv`` costs the light install 140 MB on disk and
the command about 0.2 s and 25 MiB to import, so the few lines here compute the
same numbers (`tests/test_operating.py` checks them against SciPy to 1e-9).

The regularised incomplete beta function is the continued fraction of Numerical
Recipes (Press et al., 3rd ed., 6.4, modified Lentz) times its front factor
x^a (1-x)^b / (a B(a, b)), all in logarithms. For the counts at stake (a few
false accepts in 24 million pairs) log B(a, b) is a difference of numbers near
4e8, so it is taken from Stirling's series arranged to cancel analytically
rather than from three ``lgamma`` values. The quantile is then found by Newton
steps kept inside a bisection bracket.
"""

from __future__ import annotations

import math

_EPS = 1e-15
_MAX_TERMS = 100_000
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def _stirling_correction(x: float) -> float:
    """lgamma(x) - ((x - 0.5) log x - x + log(2 pi) / 2), for x >= 10 (error below 1e-13)."""
    x2 = x * x
    return (1 / 12 - (1 / 360 - (1 / 1260 - 1 / (1680 * x2)) / x2) / x2) / x


def log_beta(a: int, b: int) -> float:
    """log B(a, b) for positive integers, accurate to about 1e-13 however large."""
    if a < 1 or b < 1:
        raise ValueError(f"log_beta needs positive integers, got {a}, {b}")
    small, large = min(a, b), max(a, b)
    if small + large < 10_000:
        return math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    if small < 10:
        # lgamma(large) - lgamma(large + small) is a short exact sum of logs.
        return math.lgamma(small) - math.fsum(math.log(large + i) for i in range(small))
    total = a + b
    return (
        _HALF_LOG_2PI
        + (a - 0.5) * math.log(a / total)
        + (b - 0.5) * math.log(b / total)
        - 0.5 * math.log(total)
        + _stirling_correction(a)
        + _stirling_correction(b)
        - _stirling_correction(total)
    )


def _continued_fraction(a: float, b: float, x: float) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, _MAX_TERMS):
        m2 = 2 * m
        even = m * (b - m) * x / ((qam + m2) * (a + m2))
        odd = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        for aa in (even, odd):
            d = 1.0 + aa * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + aa / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < _EPS:
            return h
    raise ArithmeticError(f"incomplete beta did not converge for a={a}, b={b}, x={x}")


def beta_cdf(x: float, a: int, b: int) -> float:
    """The regularised incomplete beta function I_x(a, b)."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = a * math.log(x) + b * math.log1p(-x) - log_beta(a, b)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front - math.log(a)) * _continued_fraction(a, b, x)
    return 1.0 - math.exp(log_front - math.log(b)) * _continued_fraction(b, a, 1.0 - x)


def beta_quantile(q: float, a: int, b: int) -> float:
    """The x in [0, 1] with I_x(a, b) = q (SciPy's ``betaincinv(a, b, q)``)."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"a probability must lie in [0, 1], got {q}")
    if q in (0.0, 1.0):
        return q
    lbeta = log_beta(a, b)
    lo, hi = 0.0, 1.0
    x = a / (a + b)  # the mean: a good start, inside the bracket
    for _ in range(400):
        f = beta_cdf(x, a, b) - q
        if f == 0.0:
            return x
        if f < 0:
            lo = x
        else:
            hi = x
        log_pdf = (a - 1) * math.log(x) + (b - 1) * math.log1p(-x) - lbeta
        step = f / math.exp(log_pdf) if log_pdf > -700 else math.inf
        nxt = x - step
        if not lo < nxt < hi:
            nxt = math.sqrt(lo * hi) if lo > 0 and hi < 1 and hi / lo > 4 else 0.5 * (lo + hi)
        if abs(nxt - x) <= 4e-16 * x or hi - lo <= 4e-16 * hi:
            return nxt
        x = nxt
    return x
