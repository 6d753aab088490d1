"""The safe zone's readings by simulation: false-zone rates under null models with and without
clustering by seed, and power under known zones. The tests assert what each reading promises; this
module's ``main`` prints the whole table (``python -m harness.analysis.zone_simulation``).

A model draws the paired differences D[method, time, density, seed] = rewinding - fine-tuning:

    D = gain[method, time] + sd * (sqrt(rho) * u[method, seed] + sqrt(1 - rho) * e[method, time, density, seed])

rounded to the 1/8-point steps of an 800-sample test set (ties and zeros, as real accuracies have).
``u`` is a method x seed interaction: a base network that suits one method more than fine-tuning
shifts all its densities and times alike, so the cells of one seed share it with correlation
``rho``. ``chain`` replaces ``e``'s independence along densities by an AR(1) chain with that
autocorrelation, as in iterative schedules where each round prunes the previous one. Fine-tuning's
own noise is common to both methods' differences, through ``e``'s correlation between methods (0.5).
Fine-tuning's runs are drawn too (mean 90, the same sd), so the conditional reading's filter sees a
real spread over seeds.

The rates come from the readings' own tests and procedure (``conditional_tests``,
``generalizing_tests``, ``safe_runs``), without the effect sizes, which do not change a call.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from harness.analysis.zone_grid import ALPHA, ANCHORS, BASELINE, REWINDING, Paired
from harness.analysis.zone_readings import conditional_tests, generalizing_tests, safe_runs

FRACTIONS = np.arange(1, 11) / 10
STEP = 0.125


@dataclass(frozen=True)
class Model:
    name: str
    gains: dict[str, np.ndarray]  # per method, per time
    rho: float = 0.0  # within-seed correlation of a method's differences
    chain: float = 0.0  # autocorrelation along densities
    sd: float = 1.0

    def truly_safe(self) -> np.ndarray:
        return np.logical_and.reduce([g > 0 for g in self.gains.values()])


def draw(model: Model, rng: np.random.Generator, densities: int, seeds: int) -> Paired:
    k = len(FRACTIONS)
    shape = (len(REWINDING), k, densities, seeds)
    common = rng.normal(size=(1, k, densities, seeds))  # fine-tuning's own run, in both differences
    e = np.sqrt(0.5) * common + np.sqrt(0.5) * rng.normal(size=shape)
    if model.chain:
        for j in range(1, densities):
            e[:, :, j] = model.chain * e[:, :, j - 1] + np.sqrt(1 - model.chain ** 2) * e[:, :, j]
    u = rng.normal(size=(len(REWINDING), 1, 1, seeds))
    gain = np.stack([model.gains[m] for m in REWINDING])[:, :, None, None]
    d = gain + model.sd * (np.sqrt(model.rho) * u + np.sqrt(1 - model.rho) * e)
    fine_tuning = 90 + model.sd * rng.normal(size=(k, densities, seeds))
    values = {BASELINE: fine_tuning, **{m: fine_tuning + d[i] for i, m in enumerate(REWINDING)}}
    values = {m: np.round(v / STEP) * STEP for m, v in values.items()}
    return Paired("simulated", FRACTIONS, np.arange(densities, 0, -1) / densities, np.arange(seeds), values, 100.0)


TESTS: dict[str, Callable[[Paired], tuple[np.ndarray, ...]]] = {"conditional": conditional_tests,
                                                                 "generalizing": generalizing_tests}


@dataclass(frozen=True)
class Rates:
    false_zone: float  # share of replicates calling some truly unsafe time safe
    found: float  # share finding every truly safe time (0 when none is)
    replicates: int

    @property
    def mc_error(self) -> float:
        """The Monte-Carlo standard error of ``false_zone`` at its estimate (at least alpha's)."""
        p = max(self.false_zone, ALPHA)
        return float(np.sqrt(p * (1 - p) / self.replicates))


def rates(model: Model, reading: str, replicates: int = 2000, densities: int = 10, seeds: int = 3,
          seed: int = 0, anchors: tuple[float, ...] = ANCHORS) -> Rates:
    rng = np.random.default_rng(seed)
    safe_truth = model.truly_safe()
    false = found = 0
    tests = TESTS[reading]
    for _ in range(replicates):
        p_safe = tests(draw(model, rng, densities, seeds))[0]
        called = np.array(safe_runs(FRACTIONS, p_safe, ALPHA, anchors)[0].rejected)
        false += bool((called & ~safe_truth).any())
        found += bool(safe_truth.any() and called[safe_truth].all())
    return Rates(false / replicates, found / replicates, replicates)


def null(name: str, **kw: float) -> Model:
    return Model(name, {m: np.zeros(len(FRACTIONS)) for m in REWINDING}, **kw)


NULLS = (
    null("independent"),
    null("method x seed, rho 0.1", rho=0.1),
    null("method x seed, rho 0.3", rho=0.3),
    null("method x seed, rho 0.5", rho=0.5),
    null("iterative chain, 0.5", chain=0.5),
    null("iterative chain, 0.9", chain=0.9),
    Model("least favourable (one method +3 everywhere, the other null)",
          {REWINDING[0]: np.zeros(len(FRACTIONS)), REWINDING[1]: np.full(len(FRACTIONS), 3.0)}),
    Model("least favourable, rho 0.5", {REWINDING[0]: np.zeros(len(FRACTIONS)),
                                        REWINDING[1]: np.full(len(FRACTIONS), 3.0)}, rho=0.5),
    # The generalizing reading's least favourable case: noise small against the 1-point margin, so
    # every "not worse" claim holds and only the null method's "better" claim stands in the way.
    null("independent, sd 0.2", sd=0.2),
    Model("least favourable, sd 0.2", {REWINDING[0]: np.zeros(len(FRACTIONS)),
                                       REWINDING[1]: np.full(len(FRACTIONS), 3.0)}, sd=0.2),
    Model("least favourable, sd 0.2, rho 0.5", {REWINDING[0]: np.zeros(len(FRACTIONS)),
                                                REWINDING[1]: np.full(len(FRACTIONS), 3.0)}, sd=0.2, rho=0.5),
)


def zone_model(name: str, low: float, high: float, gain: float = 2.0, **kw: float) -> Model:
    """Both methods gain ``gain`` (in sd of a cell's noise; 2 is about the paper-shaped table's 0.8 points
    over 0.35) inside [low, high] and nothing outside."""
    inside = (FRACTIONS >= low - 1e-9) & (FRACTIONS <= high + 1e-9)
    return Model(name, {m: np.where(inside, gain, 0.0) for m in REWINDING}, **kw)


ZONES = (zone_model("zone 30%-70% (at the anchor)", 0.3, 0.7), zone_model("zone 60%-90% (away from 50%)", 0.6, 0.9))


def main() -> None:
    parser = argparse.ArgumentParser(description="the safe zone's error rates and power by simulation")
    parser.add_argument("--replicates", type=int, default=2000)
    args = parser.parse_args()
    n = args.replicates
    print(f"false-zone rate (alpha {ALPHA}), {n} replicates, 10 densities x 10 times, 10 seeds for the generalizing "
          "reading, 3 seeds (30 cells) for the conditional one")
    print(f"{'model':62} {'generalizing':>13} {'conditional':>12}")
    for model in NULLS:
        g = rates(model, "generalizing", n, seeds=10)
        c = rates(model, "conditional", n, seeds=3)
        print(f"{model.name:62} {g.false_zone:13.3f} {c.false_zone:12.3f}")
    print(f"\npower to find the whole zone (gain 2 sd, {n} replicates, 10 densities), by seeds")
    print(f"{'model':36} {'reading':13} {'3':>6} {'5':>6} {'10':>6}")
    for model in ZONES:
        for reading in ("generalizing", "conditional"):
            found = [rates(model, reading, n, seeds=s).found for s in (3, 5, 10)]
            print(f"{model.name:36} {reading:13} " + " ".join(f"{f:6.2f}" for f in found))


if __name__ == "__main__":
    main()
