"""Each method's starting weights, start epoch and LR sequence against the paper's table."""

import pytest
import torch

from harness.core.hparams import BaseHparams, RetrainHparams
from harness.engine.runner import Runner, init_model, starting_weights
from harness.engine.train import train
from harness.storage.store import Store, load
from methods.spec import get_method
from tests.conftest import QUICK

# The paper's table, written out independently of methods/paper.py: (weights, g, epochs).
TABLE = {
    "fine-tuning": ("W_T", lambda T, t: T, lambda T, t: t),
    "weight-rewinding": ("W_{T-t}", lambda T, t: T - t, lambda T, t: t),
    "lr-rewinding": ("W_T", lambda T, t: T - t, lambda T, t: t),
    "low-lr-rewinding": ("W_{T-t}", lambda T, t: T, lambda T, t: t),
    "reinit": ("W'_0", lambda T, t: 0, lambda T, t: T + t),
}


@pytest.mark.parametrize("name", TABLE)
@pytest.mark.parametrize(("T", "t"), [(182, 18.2), (182, 91), (30, 30), (3, 1.5), (90, 0)])
def test_spec_matches_the_table(name, T, t):
    method = get_method(name)
    weights, g, epochs = TABLE[name]
    assert method.weights.value == weights
    assert method.start(T, t) == pytest.approx(g(T, t))
    assert method.epochs(T, t) == pytest.approx(epochs(T, t))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    runner = Runner(Store(tmp_path_factory.mktemp("methods")))
    hp = BaseHparams("mnist1d", seed=0, epochs_scale=QUICK)
    return runner, hp, runner.task(hp)


@pytest.mark.parametrize("name", TABLE)
def test_lr_sequence_follows_S_from_the_start_epoch(quick, name):
    runner, base_hp, task = quick
    T, t = task.epochs, task.epochs / 2
    result = runner.retrain(RetrainHparams(base_hp, name, t, (0.5,)))
    history = load_history(runner, RetrainHparams(base_hp, name, t, (0.5,)))
    spe = 32
    _, g, epochs = TABLE[name]
    start, end = g(T, t), g(T, t) + epochs(T, t)
    assert history[-1]["epoch"] == pytest.approx(end)
    assert result.epochs_trained == pytest.approx(epochs(T, t))
    # the rate of each epoch's last step is S at that step's position
    for rec in history:
        last_step = round(rec["epoch"] * spe) - 1
        assert rec["lr"] == pytest.approx(task.schedule(last_step / spe))
    expected_first = (round(start * spe) + spe - round(start * spe) % spe) / spe
    assert history[0]["epoch"] == pytest.approx(min(expected_first, end))


def load_history(runner, hp):
    import json

    return json.loads((runner.store.retrain_dir(hp) / "history.json").read_text())


def test_starting_weights_of_each_method(quick):
    runner, base_hp, task = quick
    T, t = task.epochs, 1.0
    base = runner.base(base_hp, [T - t])
    W_T = base.weights_at_epoch(T)
    # W_{T-t} computed independently: a fresh run of the original schedule for T - t epochs
    model = init_model(task, base_hp.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(runner.threads)  # as the runner computes (CPU bits depend on the thread count)
    try:
        train(model, None, task, runner.data(task), start_epoch=0, epochs=T - t, seed=base_hp.seed)
    finally:
        torch.set_num_threads(threads)
    W_rewound = model.state_dict()
    for name in TABLE:
        hp = RetrainHparams(base_hp, name, t, (0.5,))
        got = starting_weights(hp, task, W_T, base)
        weights = TABLE[name][0]
        if weights == "W_T":
            assert all(torch.equal(got[k], W_T[k]) for k in W_T)
        elif weights == "W_{T-t}":
            assert all(torch.equal(got[k], W_rewound[k]) for k in W_T)
        else:
            W_0 = base.weights_at_epoch(0)
            assert not torch.equal(got["0.weight"], W_0["0.weight"])
            again = starting_weights(hp, task, W_T, base)
            assert torch.equal(got["0.weight"], again["0.weight"])


def test_iterative_weight_rewinding_rewinds_to_the_original_run(quick):
    runner, base_hp, task = quick
    T, t = task.epochs, 1.5
    hp = RetrainHparams(base_hp, "weight-rewinding", t, (0.8, 0.64))
    result = runner.retrain(hp)
    assert result.round == 2 and result.density == pytest.approx(0.64, abs=1e-4)
    base = runner.base(base_hp)
    previous = load(runner.store.retrain_dir(hp.previous()) / "weights.pt")
    got = starting_weights(hp, task, previous, base)
    W = base.weights_at_epoch(T - t)
    assert all(torch.equal(got[k], W[k]) for k in W)
    mask_1 = load(runner.store.retrain_dir(hp.previous()) / "mask.pt")
    mask_2 = load(runner.store.retrain_dir(hp) / "mask.pt")
    assert all(not (mask_2[k] & ~mask_1[k]).any() for k in mask_1), "round 2 prunes within round 1's mask"
    weights_2 = load(runner.store.retrain_dir(hp) / "weights.pt")
    assert all((weights_2[k][~mask_2[k]] == 0).all() for k in mask_2)
