"""Customer lifetime value: the BG/NBD model of repeat buying and the Gamma-Gamma model of spend.

BG/NBD (Fader, Hardie & Lee 2005, "Counting your customers the easy way"): while alive, a customer buys
as a Poisson process with rate lambda ~ Gamma(r, alpha); after each purchase they drop out with
probability p ~ Beta(a, b). Gamma-Gamma (Fader & Hardie 2013, "The Gamma-Gamma model of monetary value"):
a customer's purchase values are Gamma(p, nu) with nu ~ Gamma(q, gamma), independent of how often they buy.

Both are fitted here by maximum likelihood with SciPy rather than with `lifetimes` (unmaintained since
2020) or a Bayesian stack: the likelihoods are closed-form and a few lines each. Parameters are optimised
on the log scale (they must be positive), and the likelihoods are written in logs throughout (gammaln,
logaddexp for the two-term BG/NBD likelihood) so that frequent buyers do not overflow.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.optimize import minimize
from scipy.special import expit, gammaln, hyp2f1

from threadline.errors import Invalid

Array = NDArray[np.float64]
DAYS_PER_MONTH = 365.25 / 12
MIN_CUSTOMERS = 20  # fewer purchasing customers than this and the population parameters are noise
MIN_REPEAT_BUYERS = 5  # Gamma-Gamma learns spend from repeat buyers only


class NotEnoughPurchases(Invalid):
    """Too few customers (or repeat buyers) to fit a model: nothing is estimated rather than guessed."""


@dataclass(frozen=True, slots=True)
class BgNbd:
    """Fitted BG/NBD parameters; times in the unit the model was fitted in."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")

    def _conditional_terms(self, x: Array, t_x: Array, T: Array) -> Array:
        """log of a/(b+x-1) * ((alpha+T)/(alpha+t_x))^(r+x), the odds the customer has died; -inf at x=0."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        with np.errstate(divide="ignore", invalid="ignore"):
            term = np.log(a) - np.log(b + x - 1) + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        return np.where(x > 0, term, -np.inf)

    def p_alive(self, x: Array, t_x: Array, T: Array) -> Array:
        """P(still a customer | x repeat purchases, the last at t_x, observed for T) (FHL 2005, eq. 13)."""
        return np.asarray(expit(-self._conditional_terms(x, t_x, T)), dtype=np.float64)

    def expected_purchases(self, t: float, x: Array, t_x: Array, T: Array) -> Array:
        """E[purchases in the next t | x, t_x, T] (FHL 2005, eq. 10)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, z)
        return np.asarray(head * tail * self.p_alive(x, t_x, T), dtype=np.float64)

    def expected_purchases_new(self, t: Array | float) -> Array:
        """E[X(t)]: purchases a just-acquired customer makes in t (FHL 2005, eq. 9)."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        t = np.asarray(t, dtype=np.float64)
        ratio = alpha / (alpha + t)
        value = (a + b - 1) / (a - 1) * (1 - ratio**r * hyp2f1(r, b, a + b - 1, t / (alpha + t)))
        return np.asarray(value, dtype=np.float64)


def bgnbd_log_likelihood(params: Array, x: Array, t_x: Array, T: Array) -> Array:
    """Each customer's log-likelihood (FHL 2005, eq. 6, in logs; the `A_i` terms of their note)."""
    r, alpha, a, b = params
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.log(a) - np.log(b + x - 1) - (r + x) * np.log(alpha + t_x)
    a4 = np.where(x > 0, a4, -np.inf)
    return np.asarray(a1 + a2 + np.logaddexp(a3, a4), dtype=np.float64)


def _fit(negative_ll: object, starts: list[Array]) -> tuple[Array, float]:
    """Minimise over log-parameters from a few starts; answers the best (params, log-likelihood)."""
    best: tuple[Array, float] | None = None
    for start in starts:
        found = minimize(negative_ll, np.log(start), method="L-BFGS-B", bounds=[(-12.0, 12.0)] * len(start))
        if not np.isfinite(found.fun):
            continue
        if best is None or -found.fun > best[1]:
            best = (np.exp(found.x), -float(found.fun))
    if best is None:
        raise NotEnoughPurchases("the model did not converge on these purchases")
    return best


def fit_bgnbd(x: Array, t_x: Array, T: Array) -> BgNbd:
    """Maximum-likelihood BG/NBD parameters for customers with x repeat purchases, the last at t_x
    after their first, observed for T after their first."""
    x, t_x, T = (np.asarray(v, dtype=np.float64) for v in (x, t_x, T))
    if len(x) < MIN_CUSTOMERS:
        raise NotEnoughPurchases(f"{len(x)} customers have purchased; the model needs {MIN_CUSTOMERS}")
    if not np.any(x > 0):
        raise NotEnoughPurchases("no customer has bought twice: repeat buying cannot be estimated")

    def negative_ll(log_params: Array) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), x, t_x, T).sum()
        return float(value) if np.isfinite(value) else 1e300

    scale = float(np.mean(T)) or 1.0
    starts = [np.array([1.0, scale, 1.0, 1.0]), np.array([0.5, scale / 4, 0.5, 2.0])]
    (r, alpha, a, b), ll = _fit(negative_ll, starts)
    return BgNbd(float(r), float(alpha), float(a), float(b), log_likelihood=ll)


@dataclass(frozen=True, slots=True)
class GammaGamma:
    p: float
    q: float
    gamma: float
    log_likelihood: float = float("nan")

    def expected_spend(self, x: Array, monetary: Array) -> Array:
        """E[value of a purchase | x repeat purchases averaging `monetary`] (Fader & Hardie 2013, eq. 5);
        at x = 0 the population mean p * gamma / (q - 1)."""
        p, q, gamma = self.p, self.q, self.gamma
        return np.asarray(p * (gamma + x * monetary) / (p * x + q - 1), dtype=np.float64)


def gamma_gamma_log_likelihood(params: Array, x: Array, monetary: Array) -> Array:
    """Each repeat buyer's log-likelihood of their mean spend (Fader & Hardie 2013, eq. 3, in logs)."""
    p, q, gamma = params
    px = p * x
    return np.asarray(
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(gamma)
        + (px - 1) * np.log(monetary)
        + px * np.log(x)
        - (px + q) * np.log(gamma + x * monetary),
        dtype=np.float64,
    )


def fit_gamma_gamma(x: Array, monetary: Array) -> GammaGamma:
    """Maximum-likelihood Gamma-Gamma parameters from the repeat buyers (x > 0) among the customers given."""
    x, monetary = np.asarray(x, dtype=np.float64), np.asarray(monetary, dtype=np.float64)
    buyers = (x > 0) & (monetary > 0)
    if buyers.sum() < MIN_REPEAT_BUYERS:
        raise NotEnoughPurchases(
            f"{int(buyers.sum())} customers have bought twice; spend needs {MIN_REPEAT_BUYERS}"
        )
    x, monetary = x[buyers], monetary[buyers]

    def negative_ll(log_params: Array) -> float:
        value = -gamma_gamma_log_likelihood(np.exp(log_params), x, monetary).sum()
        return float(value) if np.isfinite(value) else 1e300

    mean = float(monetary.mean())
    starts = [np.array([1.0, 2.0, mean]), np.array([5.0, 4.0, mean * 3])]
    params, ll = _fit(negative_ll, starts)
    if params[1] <= 1:
        # With q <= 1 the expected spend is infinite: the spend data cannot support a value.
        raise NotEnoughPurchases("spend varies too much between customers to estimate a mean (q <= 1)")
    p, q, gamma = params
    return GammaGamma(float(p), float(q), float(gamma), log_likelihood=ll)


def customer_value(
    bgnbd: BgNbd,
    spend: GammaGamma,
    x: Array,
    t_x: Array,
    T: Array,
    monetary: Array,
    *,
    months: int = 12,
    unit: float = 1.0,
    monthly_discount: float = 0.01,
) -> Array:
    """Discounted value of the next `months` months: each month's expected purchases (from BG/NBD) times
    the customer's expected spend (Gamma-Gamma), discounted by `monthly_discount` per month. `unit` is the
    model's time unit in days (1 when fitted in days, 7 in weeks)."""
    per_purchase = spend.expected_spend(x, monetary)
    value = np.zeros(len(x), dtype=np.float64)
    previous = np.zeros(len(x), dtype=np.float64)
    for month in range(1, months + 1):
        cumulative = bgnbd.expected_purchases(month * DAYS_PER_MONTH / unit, x, t_x, T)
        value += (cumulative - previous) * per_purchase / (1 + monthly_discount) ** month
        previous = cumulative
    return value
