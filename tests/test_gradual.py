"""Gradual magnitude pruning: Zhu & Gupta's cubic schedule, and the method end to end."""

import pytest

from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.runner import Runner
from harness.storage.store import Store, load
from methods.gradual import CubicSchedule, Gradual, cubic_sparsity
from methods.spec import get_method
from tests.conftest import QUICK


def test_sparsity_at_the_boundaries_and_in_between():
    t0, span, s_i, s_f = 100, 400, 0.2, 0.9
    assert cubic_sparsity(0, t0, span, s_i, s_f) == s_i
    assert cubic_sparsity(t0, t0, span, s_i, s_f) == s_i
    assert cubic_sparsity(t0 + span, t0, span, s_i, s_f) == s_f
    assert cubic_sparsity(t0 + 10 * span, t0, span, s_i, s_f) == s_f
    # halfway: s_f + (s_i - s_f) (1 - 1/2)^3
    assert cubic_sparsity(t0 + span // 2, t0, span, s_i, s_f) == pytest.approx(0.9 - 0.7 / 8)
    values = [cubic_sparsity(t, t0, span, s_i, s_f) for t in range(t0, t0 + span + 1, 10)]
    assert values == sorted(values)
    # fast at first, slow at the end: the first quarter adds more sparsity than the last three quarters
    quarter = cubic_sparsity(t0 + span // 4, t0, span, s_i, s_f) - s_i
    assert quarter > s_f - cubic_sparsity(t0 + span // 4, t0, span, s_i, s_f)


def test_updates_every_dt_steps_from_the_start_over_the_span():
    schedule = Gradual().schedule(1000, 2000, {"begin": 0.1, "span": 0.5, "every": 100})
    assert schedule == CubicSchedule(t0=1100, span=500, every=100)
    assert schedule.update_steps() == [1100, 1200, 1300, 1400, 1500, 1600]
    # a span that would outrun the run is cut at its end
    assert Gradual().schedule(0, 100, {"begin": 0.5, "span": 1.0, "every": 7}).span == 50


def test_parameters_are_declared_and_checked():
    method = get_method("gradual")
    assert method.resolve_params({}) == {"begin": 0.0, "span": 0.5, "every": 10}
    assert method.resolve_params({"every": 4})["every"] == 4
    with pytest.raises(HarnessError, match="gradual has no parameter 'spam'; valid: begin, span, every"):
        method.resolve_params({"spam": 1})
    with pytest.raises(HarnessError, match="every must be an integer in"):
        method.resolve_params({"every": 2.5})


@pytest.mark.parametrize("params", [(), (("begin", 0.25), ("every", 3), ("span", 0.25))])
def test_gradual_run_reaches_the_target_density_and_prunes_along_the_way(tmp_path, params):
    runner = Runner(Store(tmp_path))
    base = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)
    hp = RetrainHparams(base, "gradual", 2.0, (0.1,), method_params=params)
    result = runner.retrain(hp)
    assert result.density == pytest.approx(0.1, abs=1e-4)
    assert result.method_params == dict(get_method("gradual").overrides(dict(params)))
    mask = load(runner.store.retrain_dir(hp) / "mask.pt")
    weights = load(runner.store.retrain_dir(hp) / "weights.pt")
    assert all((weights[n][~m] == 0).all() for n, m in mask.items())
    # a one-shot prune to the same density from the same W_T keeps a different set of weights:
    # the gradual mask was chosen step by step during training
    one_shot = runner.retrain(RetrainHparams(base, "lr-rewinding", 2.0, (0.1,)))
    assert one_shot.mask_sha256 != result.mask_sha256
