"""The safe zone's statistics: the signed-rank null against enumeration, the outward procedure on
hand-made p-values, and the whole procedure by simulation (its error rate under null data, its power
under a known effect), per network and across networks on different grids."""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness.errors import HarnessError
from harness.safe_zone import GroupData, across_zone, network_zone, outward, safe_zone, safe_zones
from harness.signed_rank import hodges_lehmann, null_distribution, signed_rank, units_to_reach
from harness.statistics import normalize

ALPHA = 0.05
REPLICATES = 1000
MC_ERROR = 3 * np.sqrt(ALPHA * (1 - ALPHA) / REPLICATES)  # three Monte-Carlo standard errors at alpha


def enumerated(d: np.ndarray) -> tuple[float, float]:
    d = d[d != 0]
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[d > 0].sum()
    null = np.array([sum(r for r, s in zip(ranks, signs, strict=True) if s)
                     for signs in itertools.product((0, 1), repeat=len(d))])
    return float(np.mean(null >= observed - 1e-9)), float(np.mean(null <= observed + 1e-9))


def test_exact_null_by_recursion_equals_enumerating_every_sign_pattern():
    rng = np.random.default_rng(0)
    for n in (1, 3, 6, 10, 13):
        for _ in range(5):
            d = np.round(rng.normal(0.2, 1, n) * 4) / 4  # quarter points: ties and zeros, as accuracies have
            result = signed_rank(d)
            assert (result.greater, result.less) == pytest.approx(enumerated(d))
    assert signed_rank(np.array([1.0, 2.0, 3.0])).greater == pytest.approx(1 / 8)
    assert signed_rank(np.array([-1.0, 2.0, 3.0])).greater == pytest.approx(2 / 8)
    assert signed_rank(np.array([0.0, 0.0])).greater == 1.0  # no evidence either way
    assert null_distribution(tuple(range(2, 2 * 40 + 1, 2))).sum() == pytest.approx(1.0)


def test_without_ties_it_is_scipys_exact_test_and_beyond_fifty_its_normal_approximation():
    rng = np.random.default_rng(1)
    for n in (20, 45):
        d = rng.normal(0.3, 1, n)
        assert signed_rank(d).greater == pytest.approx(stats.wilcoxon(d, alternative="greater", method="exact").pvalue)
    d = rng.normal(0.3, 1, 80)
    approx = stats.wilcoxon(d, alternative="greater", method="approx", correction=True)
    assert signed_rank(d).greater == pytest.approx(approx.pvalue)


def test_units_needed_before_any_sample_can_be_significant():
    assert units_to_reach(0.05) == 5 and units_to_reach(0.025) == 6  # 2^-5 = 0.031, 2^-6 = 0.016
    assert signed_rank(np.ones(4)).greater == 1 / 16 > ALPHA


def test_hodges_lehmann_interval_covers_at_its_level_and_stays_in_range():
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(400):
        est = hodges_lehmann(rng.standard_t(3, 12) + 1.0)
        covered += est.low <= 1.0 <= est.high
    assert 0.92 <= covered / 400 <= 0.99
    few = hodges_lehmann(np.array([12.0, 15.0, 22.0, 18.0]))  # four units cannot bound the median at 95%
    # the median of the 10 Walsh averages, and an interval as wide as the metric allows
    assert (few.low, few.high, few.median) == (-100.0, 100.0, pytest.approx(16.75))


def test_outward_procedure_on_hand_made_p_values():
    p = [0.5, 0.04, 0.02, 0.01, 0.02, 0.03]
    assert outward(p, 3, ALPHA).zone == (2, 4)  # 0.03 > alpha/2 stops the right side, 0.04 the left
    assert outward(p, 3, ALPHA).levels == (None, 0.025, 0.025, 0.05, 0.025, 0.025)
    assert outward([0.5, 0.2, 0.06, 0.01], 2, ALPHA).zone is None  # the anchor decides first
    # the right side reaches the end of the grid, so its alpha/2 goes to the left: 0.04 <= alpha
    assert outward([0.5, 0.04, 0.02, 0.01, 0.02], 3, ALPHA).zone == (1, 4)
    assert outward([0.01], 0, ALPHA).zone == (0, 0)


def group(diffs_by_method: dict[str, np.ndarray], fractions: list[float], densities: int, seeds: int) -> GroupData:
    """Paired differences (method x fraction x unit) as the procedure sees them."""
    units = pd.DataFrame([(d, s) for d in range(densities) for s in range(seeds)], columns=["density", "seed"])
    tables = {}
    for method, values in diffs_by_method.items():
        rows = [{"density": u.density, "seed": u.seed, "fraction": f, "diff": values[i, j]}
                for i, f in enumerate(fractions) for j, u in enumerate(units.itertuples())]
        tables[method] = pd.DataFrame(rows)
    return GroupData("sim", fractions, tables, units, 100.0)


FRACTIONS = [k / 10 for k in range(1, 11)]


def simulate(gains: dict[str, np.ndarray], rng: np.random.Generator, densities: int = 4, seeds: int = 3
             ) -> dict[str, np.ndarray]:
    """Test-accuracy differences against fine-tuning with realistic noise: each run of a unit has its
    own seed noise (0.3 points) around the unit's shared base network, on an 800-sample test set (steps
    of 0.125 points); fine-tuning's run is common to both methods' differences."""
    shape = (len(FRACTIONS), densities * seeds)
    unit = rng.normal(90, 1.0, shape[1])

    def run(gain):
        return np.round((unit + gain[:, None] + rng.normal(0, 0.3, shape)) * 8) / 8

    fine_tuning = run(np.zeros(len(FRACTIONS)))
    return {m: run(g) - fine_tuning for m, g in gains.items()}


def rates(gains: dict[str, np.ndarray], truly_safe: np.ndarray, replicates: int = REPLICATES, seed: int = 0,
          holm: bool = False) -> tuple[float, float]:
    """Share of replicates calling some unsafe fraction safe, and share finding the whole true zone."""
    rng = np.random.default_rng(seed)
    false, found = 0, 0
    for _ in range(replicates):
        data = group(simulate(gains, rng), FRACTIONS, 4, 3)
        safe = holm_calls(data) if holm else calls(network_zone(data, ALPHA))
        false += bool((safe & ~truly_safe).any())
        found += bool((safe[truly_safe]).all()) if truly_safe.any() else 0
    return false / replicates, found / replicates


def calls(zone) -> np.ndarray:
    return (zone.axis["call"] == "safe").to_numpy()


def holm_calls(data: GroupData) -> np.ndarray:
    """The old rule, for comparison: Holm over every (method, fraction) test, both methods significant."""
    p = np.array([[signed_rank(d.loc[d["fraction"] == f, "diff"].to_numpy()).greater for f in FRACTIONS]
                  for d in data.diffs.values()])
    order = np.argsort(p, axis=None)
    m = p.size
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(np.maximum.accumulate((m - np.arange(m)) * p.ravel()[order]), 1)
    return (adjusted.reshape(p.shape) <= ALPHA).all(axis=0)


def test_no_fraction_is_called_safe_under_the_complete_null():
    none = np.zeros(len(FRACTIONS))
    false, _ = rates({"weight-rewinding": none, "lr-rewinding": none}, np.zeros(len(FRACTIONS), bool))
    assert false <= ALPHA + MC_ERROR


def test_error_rate_at_the_least_favourable_null_is_at_most_alpha():
    """LR rewinding far better everywhere, weight rewinding no better anywhere: every fraction is unsafe,
    and only weight rewinding's test stands between the data and a false zone."""
    false, _ = rates({"weight-rewinding": np.zeros(len(FRACTIONS)), "lr-rewinding": np.full(len(FRACTIONS), 3.0)},
                     np.zeros(len(FRACTIONS), bool))
    print(f"false-zone rate at the least favourable null: {false:.3f} (alpha {ALPHA})")
    assert false <= ALPHA + MC_ERROR
    assert false >= ALPHA / 4  # not vacuous: the procedure does spend its alpha


def test_unsafe_fractions_beside_a_true_zone_are_rarely_called_safe_and_the_power_is_reported():
    """Both methods gain 0.5 points from 30% to 70% of T; outside, weight rewinding gains nothing while
    LR rewinding keeps gaining. The procedure may extend the zone into unsafe fractions only at rate
    alpha; its power to find the whole zone beats Holm's over every test."""
    truly_safe = np.array([0.3 <= f <= 0.7 for f in FRACTIONS])
    gains = {"weight-rewinding": np.where(truly_safe, 0.5, 0.0), "lr-rewinding": np.full(len(FRACTIONS), 0.5)}
    false, power = rates(gains, truly_safe)
    _, holm_power = rates(gains, truly_safe, replicates=300, holm=True)
    print(f"partial null: false-zone rate {false:.3f}; power to find all of 30%-70%: {power:.2f} "
          f"(Holm: {holm_power:.2f})")
    assert false <= ALPHA + MC_ERROR
    assert power > holm_power + 0.1
    assert power >= 0.5


def test_across_networks_on_different_grids_is_safe_in_each_and_names_the_bounds():
    """A CIFAR-like grid (t/182) and an ImageNet-like one (t/90): the second loses at 80% of T."""
    rng = np.random.default_rng(3)
    cifar = [round(182 * k / 10) / 182 for k in range(1, 11)]
    gain = np.array([0.0, 0.0, 3, 3, 3, 3, 3, 3, 3, 0.0])
    imagenet_gain = gain.copy()
    imagenet_gain[7] = -3.0
    zones = {}
    for name, grid, g in (("cifar", cifar, gain), ("imagenet", FRACTIONS, imagenet_gain)):
        diffs = simulate({"weight-rewinding": g, "lr-rewinding": g}, rng)
        zones[name] = network_zone(group(diffs, grid, 4, 3), ALPHA)
    assert (zones["cifar"].start, zones["cifar"].end) == (cifar[2], cifar[8])
    assert (zones["imagenet"].start, zones["imagenet"].end) == (0.3, 0.7)
    across = across_zone(zones, ALPHA)
    assert across.verdict == "zone"
    assert (across.start, across.end) == (cifar[2], cifar[6])  # inside both networks' own safe points
    assert "imagenet" in across.bounds[1] and "cifar" not in across.bounds[1]
    assert "80%" in across.bounds[1]


def test_across_networks_error_rate_with_one_network_at_the_null():
    """One network truly safe everywhere, the other with no effect: a zone across both would be false."""
    rng = np.random.default_rng(4)
    false = 0
    replicates = 400
    for _ in range(replicates):
        strong = simulate({m: np.full(10, 3.0) for m in ("weight-rewinding", "lr-rewinding")}, rng)
        null = simulate({m: np.zeros(10) for m in ("weight-rewinding", "lr-rewinding")}, rng)
        zones = {"a": network_zone(group(strong, FRACTIONS, 4, 3)), "b": network_zone(group(null, FRACTIONS, 4, 3))}
        false += across_zone(zones).verdict == "zone"
    assert false / replicates <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / replicates)


def table(rows):
    columns = ["task", "pruning", "schedule", "method", "density", "retraining_epochs", "seed", "val_acc", "test_acc"]
    return normalize(pd.DataFrame([dict(zip(columns, r, strict=True)) for r in rows]))


def test_four_units_are_inconclusive_with_the_units_needed_not_a_finding():
    """Every difference +12 to +22 points, but 4 units cannot reach p <= 0.05 (1/16 at best)."""
    rows = []
    for density, seed, gain in ((0.5, 0, 12), (0.5, 1, 15), (0.2, 0, 18), (0.2, 1, 22)):
        for t in (10, 20, 30, 40):
            rows.append(("toy", "global-magnitude", "one-shot", "fine-tuning", density, t, seed, 60, 60))
            rows += [("toy", "global-magnitude", "one-shot", m, density, t, seed, 60 + gain, 60 + gain)
                     for m in ("weight-rewinding", "lr-rewinding")]
    zone = safe_zone(table(rows), bootstrap=20)
    assert zone.verdict == "inconclusive" and zone.start is None
    assert "4 paired units cannot reach significance at 0.05" in zone.reason
    assert "at least 5 are needed" in zone.reason and "3 seeds at these 2 densities (now 2)" in zone.reason
    effects = zone.effects
    assert (effects["ci_low"] >= -100).all() and (effects["ci_high"] <= 100).all()
    assert (effects["median"] > 10).all()


def test_no_zone_is_a_finding_only_when_rewinding_is_shown_worse():
    rng = np.random.default_rng(5)
    rows = []
    for density in (0.5, 0.25, 0.125, 0.0625):
        for seed in range(3):
            for t in (10, 20, 30):
                base = 90 + rng.normal(0, 0.3)
                rows.append(("toy", "global-magnitude", "one-shot", "fine-tuning", density, t, seed, base, base))
                rows += [("toy", "global-magnitude", "one-shot", m, density, t, seed, base - 1 + rng.normal(0, 0.1),
                          base - 1 + rng.normal(0, 0.1)) for m in ("weight-rewinding", "lr-rewinding")]
    zone = safe_zone(table(rows), bootstrap=10)
    assert zone.verdict == "no zone" and (zone.axis["call"] == "unsafe").all()
    assert zone.describe().startswith("no zone: at every retraining time a rewinding method is significantly worse")


def test_groups_without_the_rewinding_methods_are_skipped_with_the_reason():
    rows = [("toy", "global-magnitude", "one-shot", m, 0.5, 10, s, 90, 90) for m in ("fine-tuning", "reinit")
            for s in range(3)]
    found = safe_zones(table(rows), bootstrap=0)
    assert found.networks == {} and "no pairs for weight-rewinding, lr-rewinding" in found.skipped[
        "toy, global-magnitude, one-shot"]
    with pytest.raises(HarnessError, match="no pairs for"):
        safe_zone(table(rows))


def row(method, density, t, seed, val, test, task="toy"):
    return (task, "global-magnitude", "one-shot", method, density, t, seed, val, test)


def test_safe_zone_found_where_both_rewinding_methods_beat_fine_tuning():
    """Rewinding beats fine-tuning by 2 points at fractions 0.3-0.8 for every pair, and only there."""
    rng = np.random.default_rng(0)
    rows = []
    for task in ("a", "b"):
        for density in (0.5, 0.25, 0.125, 0.0625):
            for seed in range(3):
                for k in range(1, 11):
                    t = 10 * k
                    base = 90 + rng.normal(0, 0.3)
                    rows.append(row("fine-tuning", density, t, seed, base, base, task))
                    for m in ("weight-rewinding", "lr-rewinding"):
                        gain = 2.0 if 3 <= k <= 8 else -0.5
                        value = base + gain + rng.normal(0, 0.1)
                        rows.append(row(m, density, t, seed, value, value, task))
    found = safe_zones(table(rows), bootstrap=50)
    zone = found.networks["a, global-magnitude, one-shot"]
    assert (zone.start, zone.end) == (0.3, 0.8)
    assert zone.units == 12 and found.across.verdict == "zone" and (found.across.start, found.across.end) == (0.3, 0.8)
    assert zone.inclusion[0.5] == 1.0 and zone.inclusion[0.1] == 0.0
    assert zone.start_interval == (0.3, 0.3) and zone.end_interval == (0.8, 0.8)
    inside = zone.effects[zone.effects["fraction"] == 0.5]
    assert (inside["ci_low"] > 1.5).all() and (inside["ci_high"] < 2.5).all() and (inside["wins"] == 12).all()
    assert "safe zone 30%-80% of T" in zone.describe()
