import pytest
import torch

from harness.core.errors import HarnessError
from harness.core.hparams import BaseHparams
from tasks.imagenet import load
from tasks.spec import DataOptions, get_task
from tests.fabricate import image_folder

PAPER_PARAMS = {34: 21.8e6, 50: 25.5e6}


@pytest.mark.parametrize("depth", PAPER_PARAMS)
def test_timm_models_have_the_papers_parameter_counts(depth):
    model = get_task(f"imagenet-resnet{depth}").make_model()
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(PAPER_PARAMS[depth], rel=0.01)


def test_warmup_and_drops_of_the_imagenet_schedule():
    task = get_task("imagenet-resnet50")
    S = task.schedule
    assert task.epochs == 90 and task.batch_size == 1024
    assert S(0) == 0 and S(2.5) == pytest.approx(0.2) and S(5) == pytest.approx(0.4)
    assert (S(29.9), S(30), S(59.9), S(60), S(79.9), S(80), S(90)) == pytest.approx(
        (0.4, 0.04, 0.04, 0.004, 0.004, 0.0004, 0.0004))
    assert (task.optimizer.nesterov, task.optimizer.weight_decay) == (True, 1e-4)


def test_learning_rate_scales_linearly_with_batch_size():
    task = get_task("imagenet-resnet50").resolved(BaseHparams("imagenet-resnet50", batch_size=256))
    assert task.batch_size == 256
    assert task.schedule(10) == pytest.approx(0.1) and task.schedule(85) == pytest.approx(0.0001)
    assert task.schedule.warmup_epochs == 5


def test_epochs_scale_shrinks_every_boundary():
    task = get_task("imagenet-resnet34").resolved(BaseHparams("imagenet-resnet34", epochs_scale=0.1))
    assert task.epochs == pytest.approx(9)
    assert task.schedule(0.5) == pytest.approx(0.4) and task.schedule(3) == pytest.approx(0.04)


def test_image_folder_loader(tmp_path):
    root = image_folder(tmp_path)
    data = load(DataOptions(data_dir=root, batch_size=4, workers=0))
    assert len(data.train) == 12 and data.steps_per_epoch == 3
    assert [len(data.eval_sets[s][1]) for s in ("val", "test")] == [3, 12]
    x, y = data.batch(seed=0, epoch=0, index=1)
    assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32 and set(y.tolist()) <= {0, 1, 2}
    [(xv, _)] = list(data.eval_batches("val"))
    assert xv.shape == (3, 3, 224, 224)
    # the same batch whichever worker builds it and wherever the epoch started
    with_workers = load(DataOptions(data_dir=root, batch_size=4, workers=2))
    x2, y2 = with_workers.batch(seed=0, epoch=0, index=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    sequential = load(DataOptions(data_dir=root, batch_size=4, workers=0))
    sequential.batch(0, 0, 0)
    x3, _ = sequential.batch(0, 0, 1)
    assert torch.equal(x, x3)
    x4, _ = sequential.batch(0, 1, 1)
    assert not torch.equal(x, x4)


def test_missing_image_folder(tmp_path):
    with pytest.raises(HarnessError, match=r"expected .*/train/<class>/<image>"):
        load(DataOptions(data_dir=tmp_path))
