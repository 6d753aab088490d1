import pytest

from harness.core.schedule import Schedule
from tasks.spec import get_task


def test_piecewise_constant_with_fractional_boundaries():
    s = Schedule(lr=0.1, epochs=10, drops=((4.5, 0.01), (7.25, 0.001)))
    assert s(0) == 0.1
    assert s(4.49) == 0.1
    assert s(4.5) == 0.01
    assert s(7.2) == 0.01
    assert s(7.25) == 0.001
    assert s(10) == 0.001


def test_beyond_T_the_rate_is_S_T():
    s = Schedule(lr=0.1, epochs=10, drops=((5, 0.01),))
    assert s(10) == s(11) == s(1000) == 0.01


def test_linear_warmup_then_steps():
    s = Schedule(lr=0.4, epochs=90, drops=((30, 0.04), (60, 0.004)), warmup_epochs=5)
    assert s(0) == 0.0
    assert s(2.5) == pytest.approx(0.2)
    assert s(5) == 0.4
    assert s(29.9) == 0.4
    assert s(30) == 0.04
    assert s(95) == 0.004


def test_warmup_from_a_fraction():
    s = Schedule(lr=1.0, epochs=10, warmup_epochs=2, warmup_from=0.5)
    assert s(0) == 0.5 and s(1) == pytest.approx(0.75) and s(2) == 1.0


def test_scaled_schedule_shrinks_every_boundary():
    s = Schedule(lr=0.1, epochs=30, drops=((15, 0.01), (22.5, 0.001)), warmup_epochs=3).scaled(0.1)
    assert s.epochs == pytest.approx(3)
    assert [b for b, _ in s.drops] == pytest.approx([1.5, 2.25])
    assert s.warmup_epochs == pytest.approx(0.3)


def test_drops_out_of_order_are_rejected():
    with pytest.raises(ValueError, match="increasing"):
        Schedule(lr=0.1, epochs=10, drops=((5, 0.01), (3, 0.001)))


def test_mnist1d_schedule_decays_at_half_and_three_quarters():
    task = get_task("mnist1d")
    T = task.epochs
    S = task.schedule
    assert S(0) == 0.1 and S(T / 2 - 1e-9) == 0.1
    assert S(T / 2) == pytest.approx(0.01) and S(0.75 * T - 1e-9) == pytest.approx(0.01)
    assert S(0.75 * T) == pytest.approx(0.001) and S(2 * T) == pytest.approx(0.001)
