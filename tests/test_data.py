import torch

from harness.data.tensor_data import validation_split
from tasks.mnist1d import generate, load
from tasks.spec import DataOptions


def test_validation_is_a_fixed_random_fifth_of_the_test_set():
    val, test = validation_split(1000)
    assert len(val) == 200 and len(test) == 800
    assert set(val.tolist()).isdisjoint(test.tolist())
    assert sorted(val.tolist() + test.tolist()) == list(range(1000))
    again_val, _ = validation_split(1000)
    assert torch.equal(val, again_val)
    assert val.tolist() != list(range(200)), "random, not the first 200"


def test_mnist1d_splits_partition_the_test_set():
    data = load(DataOptions())
    raw = generate()
    x_val, _ = data.splits["val"]
    x_test, _ = data.splits["test"]
    assert len(x_val) == 200 and len(x_test) == 800
    assert len(data.y_train) == 4000 and data.steps_per_epoch == 32
    assert x_val.shape[1:] == (1, 40)
    joined = torch.cat([x_val, x_test])
    assert torch.equal(joined.sort(0).values, raw["x_test"].sort(0).values)


def test_data_order_depends_only_on_seed_and_epoch():
    data = load(DataOptions())
    x1, y1 = data.batch(seed=3, epoch=5, index=2)
    data.batch(seed=1, epoch=0, index=0)  # anything in between
    x2, y2 = data.batch(seed=3, epoch=5, index=2)
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(data.order(3, 5), data.order(3, 6))
    assert not torch.equal(data.order(3, 5), data.order(4, 5))
    assert sorted(data.order(3, 5).tolist()) == list(range(4000))


def test_mnist1d_is_kept_in_the_user_cache_bit_for_bit(tmp_path, monkeypatch):
    from tasks.mnist1d import cache_path

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    generate.cache_clear()
    try:
        fresh = generate()  # generated, and kept
        assert cache_path().is_relative_to(tmp_path) and cache_path().exists()
        generate.cache_clear()
        kept = generate()  # read back
        assert all(torch.equal(fresh[k], kept[k]) for k in fresh)
        cache_path().write_bytes(b"not a tensor file")  # damaged: generated again, and kept again
        generate.cache_clear()
        again = generate()
        assert all(torch.equal(fresh[k], again[k]) for k in fresh)
        assert torch.load(cache_path(), weights_only=True).keys() == fresh.keys()
    finally:
        generate.cache_clear()
