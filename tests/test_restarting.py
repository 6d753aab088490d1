"""The later retraining schedules against their papers' definitions, step by step; the paper's
methods unchanged; prefix sharing only where it gives the bits of a cell run alone."""

from __future__ import annotations

import json
import math

import pytest
import torch

from harness.core.canonical import content_hash
from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.gate import check_cell
from harness.engine.runner import Runner
from harness.storage.store import Store
from harness.sweep.plan import plan
from methods.lr import Compressed, LinearDecay, OneCycle
from methods.spec import METHODS, Length, Retraining, Start, Weights, get_method
from tests.conftest import QUICK

SPE = 32  # MNIST-1D's steps per epoch at its standard batch


class Recording(Runner):
    """A runner that notes the learning rate it gives every optimizer step and the weights a run
    starts from."""

    def train(self, model, mask, task, **kwargs):
        if "lr_at" not in kwargs:  # the base network's training
            return super().train(model, mask, task, **kwargs)
        rates, lr_at = [], kwargs["lr_at"]
        self.rates, self.initial = rates, {k: v.detach().clone() for k, v in model.state_dict().items()}

        def noted(step: int) -> float:
            rates.append((step, lr_at(step)))
            return rates[-1][1]

        return super().train(model, mask, task, **{**kwargs, "lr_at": noted})


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    runner = Recording(Store(tmp_path_factory.mktemp("restarting")))
    base = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)
    return runner, base, runner.task(base)


# -- the papers' definitions, written out here independently of methods/lr.py ---------------------

def cos_up(x: float, low: float, high: float) -> float:
    return low + (high - low) * (1 - math.cos(math.pi * x)) / 2


def slr(x: float, S, top: float) -> float:  # Le & Hua: warm-up 10%, then S over the remaining 90%
    return cos_up(x / 0.1, 0, top) if x < 0.1 else S(S.epochs * (x - 0.1) / 0.9)


def clr(x: float, S, top: float) -> float:  # Le & Hua: OneCycleLR(div 100, final div 100, pct 0.1, cos)
    if x < 0.1:
        return cos_up(x / 0.1, top / 100, top)
    return cos_up((x - 0.1) / 0.9, top, top / 1e4)


def llr(x: float, S, top: float) -> float:  # Zimmer et al.: warm-up 10% to the peak, then linear to 0
    return cos_up(x / 0.1, 0, top) if x < 0.1 else top * (1 - (x - 0.1) / 0.9)


def allr_peak(W: dict, before: dict, after: dict, names: list[str], top: float, t: float, T: float) -> float:
    """Zimmer et al.: clip(relative norm drop / sqrt(pruned share) * peak, t/T * peak, peak)."""
    norm = math.sqrt(sum(float((W[n].double() ** 2).sum()) for n in names))
    dropped = math.sqrt(sum(float(((W[n].double() * (before[n] & ~after[n])) ** 2).sum()) for n in after))
    share = 1 - sum(int(m.sum()) for m in after.values()) / sum(int(m.sum()) for m in before.values())
    return min(max(dropped / norm / math.sqrt(share) * top, min(t / T, 1) * top), top)


DEFINITIONS = {"slr": slr, "clr": clr, "llr": llr, "allr": llr}


@pytest.mark.parametrize("name", DEFINITIONS)
def test_every_step_follows_the_papers_schedule_from_W_T(quick, name):
    runner, base, task = quick
    T, t, density = task.epochs, 1.5, 0.5
    hp = RetrainHparams(base, name, t, (density,))
    result = runner.retrain(hp)
    assert not result.cached
    S, top = task.schedule, task.schedule.lr  # MNIST-1D's S starts at its peak
    W_T = runner.base(base).weights_at_epoch(T)
    if name == "allr":
        model = task.make_model()
        names = [n for n, _ in model.named_parameters()]
        after = torch.load(runner.store.retrain_dir(hp) / "mask.pt", weights_only=True)
        before = {k: torch.ones_like(v) for k, v in after.items()}
        top = allr_peak(W_T, before, after, names, top, t, T)
        assert t / T * task.schedule.lr <= top <= task.schedule.lr
    first, steps = round(T * SPE), round(t * SPE)
    rates = dict(runner.rates)
    assert sorted(rates) == list(range(first, first + steps))  # the run continues S's clock after T
    for k in range(steps):
        expected = DEFINITIONS[name](k / steps, S, top)
        assert rates[first + k] == pytest.approx(expected, rel=1e-9, abs=1e-15), (name, k)
    # it starts from W_T (pruned inside TRAIN), as fine-tuning does
    assert all(torch.equal(runner.initial[k], W_T[k]) for k in W_T)
    history = json.loads((runner.store.retrain_dir(hp) / "history.json").read_text())
    assert history[-1]["lr"] == pytest.approx(rates[first + steps - 1])


# -- the paper's methods ------------------------------------------------------------------------

# (content hash of the cell mnist1d, epochs scale 0.1, t = 1.5, density 0.5) as the store named
# them before the learning rate became part of the method's declaration: stored cells stay valid.
PAPER_HASHES = {
    ("fine-tuning", ()): "c25b327eff86",
    ("fine-tuning", (("lr_scale", 2.0),)): "121d73ba1b70",
    ("weight-rewinding", ()): "1c9d3f2fc06a",
    ("lr-rewinding", ()): "7b8fff0866b2",
    ("low-lr-rewinding", ()): "1a07ed3b5b31",
    ("reinit", ()): "f32711ed0a8f",
    ("gradual", ()): "3f7a6d32c808",
}


@pytest.mark.parametrize(("name", "params"), list(PAPER_HASHES), ids=[f"{n}{dict(p)}" for n, p in PAPER_HASHES])
def test_the_paper_methods_keep_their_cells_and_their_rates(quick, name, params):
    runner, base, task = quick
    hp = RetrainHparams(base, name, 1.5, (0.5,), method_params=params)
    assert content_hash(hp) == PAPER_HASHES[(name, params)]
    runner.retrain(hp)
    method = get_method(name)
    S = task.schedule.scaled(lr_factor=dict(params).get("lr_scale", 1.0))
    # each step's rate is exactly, bit for bit, S at the step's epoch, as before
    assert all(rate == S(step / SPE) for step, rate in runner.rates), name
    assert runner.rates[0][0] == round(method.start(task.epochs, 1.5) * SPE)


# -- prefix sharing -----------------------------------------------------------------------------

def test_a_schedule_that_depends_on_t_never_shares_a_prefix():
    for rule in (Compressed(), OneCycle(), LinearDecay(), LinearDecay(adaptive=True)):
        spec = Retraining("x", "x", Weights.TRAINED, Start.T, Length.t, lr=rule)
        assert not spec.shares_prefix(30.0)
    assert Retraining("x", "x", Weights.TRAINED, Start.T, Length.t).shares_prefix(30.0)
    assert not Retraining("x", "x", Weights.TRAINED, Start.T_MINUS_t, Length.t).shares_prefix(30.0)
    assert not Retraining("x", "x", Weights.REWOUND, Start.T, Length.t).shares_prefix(30.0)


def applicable(base: BaseHparams) -> list[str]:
    """The registered methods the gate lets run on ``base``'s task (not those that need, say, a transformer's
    blocks)."""
    names = []
    for name in METHODS.names():
        try:
            check_cell(RetrainHparams(base, name, 1.5, (0.5,)))
        except HarnessError:
            continue
        names.append(name)
    return names


def test_wherever_the_plan_shares_a_prefix_the_bits_equal_a_cell_run_alone(tmp_path):
    """Every registered method at two retraining times: the plan's groups, run as one run, give each
    shorter cell exactly what it gives run alone."""
    base = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)
    cells = [RetrainHparams(base, name, t, (0.5,)) for name in applicable(base) for t in (1.5, 3.0)]
    jobs = plan(cells)
    grouped = [j for j in jobs if len(j.cells) > 1]
    assert {j.cells[0].method for j in grouped} == {n for n in applicable(base) if get_method(n).shares_prefix(3.0)}
    assert all(not get_method(j.cells[0].method).lr.depends_on_t for j in grouped)
    shared, alone = Runner(Store(tmp_path / "shared")), Runner(Store(tmp_path / "alone"))
    for job in grouped:
        shared.retrain_group(list(job.cells))
        short = job.cells[0]
        a = alone.retrain(short)
        b = json.loads((shared.store.retrain_dir(short) / "result.json").read_text())
        assert (a.weights_sha256, a.val_acc, a.test_acc) == (b["weights_sha256"], b["val_acc"], b["test_acc"]), \
            short.method


# -- everywhere: searches and plots ---------------------------------------------------------------

@pytest.mark.parametrize("name", METHODS.names())
def test_a_search_explores_what_each_method_declares(name):
    from harness.tune import space as tune_space

    method = get_method(name)
    searched, fixed = tune_space.parse_space(method, 30.0, [])
    assert set(searched) == {"t"} | {n for n, p in method.params.items() if p.searchable} and not fixed


def test_plots_take_the_colour_and_label_a_method_declares():
    from leaderboard.plots import color, legend_name

    declared = [get_method(name) for name in METHODS.names() if get_method(name).color]
    assert len(declared) >= 10  # the paper's six and the four restarts
    for method in declared:
        assert color(method.name) == method.color and legend_name(method.name) == (method.label or method.name)
    assert (color("slr"), legend_name("slr")) == ("#17becf", "SLR")
    assert legend_name("a-tuned-variant") == "a-tuned-variant" and color("a-tuned-variant").startswith("#")
