"""WMT16 GNMT on fairseq: a corpus preprocessed by the real fairseq-preprocess, the model, the schedule,
pruning inside LSTMs, and end-to-end runs of a tiny GNMT with two methods."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

pytest.importorskip("fairseq", reason="the nmt extra (fairseq) is not installed")

from fairseq.data import Dictionary
from fairseq.models import ARCH_MODEL_REGISTRY

from harness.cli.app import app
from harness.storage import store
from methods.pruning import get_pruning
from tasks.nmt.gnmt import build_gnmt
from tasks.spec import DataOptions, get_task
from tasks.wmt16 import VOCAB, gnmt_flops, gnmt_schedule, weight_matrices

cli = CliRunner()
WORDS = {"the": "die", "cat": "Katze", "dog": "Hund", "sees": "sieht", "eats": "isst", "a": "eine",
         "small": "kleine", "big": "große", "house": "Haus", "mouse": "Maus", "red": "rote", "green": "grüne",
         "bird": "Vogel", "fish": "Fisch", "runs": "läuft", "sleeps": "schläft", "and": "und", "now": "jetzt"}


def write_pairs(folder: Path, name: str, count: int, rng: random.Random) -> None:
    """Sentences of 3-9 words and their word-by-word translations; BPE splits a few words with "@@ "."""
    english, german = [], []
    for _ in range(count):
        words = [rng.choice(list(WORDS)) for _ in range(rng.randint(3, 9))]
        english.append(" ".join(words) + " .")
        german.append(" ".join(WORDS[w] if w != "house" else "Ha@@ us" for w in words) + " .")
    (folder / f"{name}.en").write_text("\n".join(english) + "\n")
    (folder / f"{name}.de").write_text("\n".join(german) + "\n")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("wmt")
    raw = root / "raw"
    raw.mkdir()
    rng = random.Random(0)
    for name, count in (("train", 400), ("newstest2014", 40), ("newstest2015", 40)):
        write_pairs(raw, name, count, rng)
    subprocess.run([sys.executable, "-m", "fairseq_cli.preprocess", "--source-lang", "en", "--target-lang", "de",
                    "--trainpref", str(raw / "train"), "--validpref", str(raw / "newstest2014"),
                    "--testpref", str(raw / "newstest2015"), "--destdir", str(root / "bin"),
                    "--joined-dictionary", "--workers", "1"], check=True, capture_output=True)
    return root / "bin"


def test_the_preprocessed_folder_loads_as_token_batches(corpus):
    data = get_task("wmt16-gnmt-tiny").load_data(DataOptions(data_dir=corpus, batch_size=16))
    assert len(data.dictionary) == VOCAB and data.dictionary.index("Katze") != data.dictionary.unk()
    assert data.steps_per_epoch == len(data.batches) >= 400 // 16
    sample = data.batch(0, 0, 0)
    assert sample["net_input"]["src_tokens"].shape[0] <= 16
    assert sample["ntokens"] <= 16 * 32
    # the order of an epoch depends only on (seed, epoch)
    same = data.batch(0, 0, 0)["id"], data.batch(0, 1, 0)["id"], data.batch(1, 0, 0)["id"]
    assert torch.equal(sample["id"], same[0])
    order = [data.batch(0, 0, i)["id"].tolist() for i in range(data.steps_per_epoch)]
    assert sorted(i for ids in order for i in ids) == list(range(400))


def test_bleu_scores_detokenized_text(corpus):
    from sacremoses import MosesDetokenizer

    from tasks.nmt.data import detokenized

    data = get_task("wmt16-gnmt-tiny").load_data(DataOptions(data_dir=corpus, batch_size=16))
    d = data.dictionary
    ids = torch.tensor([d.index(w) for w in ("die", "Ha@@", "us", "sieht", "Katze", ".")] + [d.eos(), d.pad()])
    assert detokenized(d, MosesDetokenizer(), ids) == "die Haus sieht Katze."
    # evaluation sees every test sentence once, as text
    refs = [detokenized(d, MosesDetokenizer(), s["target"][i]) for s in data.eval_batches("test")
            for i in range(len(s["id"]))]
    assert len(refs) == 40 and all("@@" not in r and r.endswith(".") for r in refs)


def test_a_folder_that_is_not_preprocessed_is_one_line(tmp_path):
    result = cli.invoke(app, ["run", "fine-tuning", "wmt16-gnmt-tiny", "--data-dir", str(tmp_path),
                              "--store", str(tmp_path / "s"), "--no-tracking"])
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "lacks dict.en.txt" in result.output
    assert "fairseq-preprocess" in result.output and len(result.output.strip().splitlines()) == 1


def test_gnmt_is_registered_with_fairseq_and_has_the_papers_shape():
    assert {"gnmt", "gnmt_tiny"} <= set(ARCH_MODEL_REGISTRY)
    with torch.device("meta"):
        full = build_gnmt(Dictionary(), VOCAB, 1024, 4)
    count = sum(p.numel() for p in full.parameters())
    assert 150e6 < count < 170e6, count  # the paper counts 165M
    lstms = [m for m in full.modules() if isinstance(m, torch.nn.LSTM)]
    assert len(lstms) == 8 and lstms[0].bidirectional and not any(m.bidirectional for m in lstms[1:])
    assert all(m.hidden_size == 1024 for m in lstms)
    assert full.encoder.embed_tokens is full.decoder.embed_tokens  # one shared BPE vocabulary


def test_incremental_decoding_matches_the_full_forward():
    torch.manual_seed(0)
    model = build_gnmt(Dictionary(), 50, hidden=16, layers=4, dropout=0.0).eval()
    src = torch.randint(4, 50, (3, 7))
    lengths = torch.tensor([7, 5, 2])
    src[1, 5:] = 1
    src[2, 2:] = 1
    prev = torch.randint(4, 50, (3, 6))
    encoder_out = model.encoder(src, lengths)
    full = model.decoder(prev, encoder_out)[0]
    state: dict = {}
    steps = [model.decoder(prev[:, : i + 1], encoder_out, incremental_state=state)[0] for i in range(6)]
    assert torch.allclose(torch.cat(steps, dim=1), full, atol=1e-5)
    # padding never changes a sentence's encoding
    alone = model.encoder(src[2:, :2], lengths[2:])["encoder_out"]
    assert torch.allclose(alone[:, 0], encoder_out["encoder_out"][:2, 2], atol=1e-5)


def test_the_tiny_gnmt_learns_from_its_source(corpus):
    """Memorizing one batch takes a decoder that reads the source: 100 steps bring the loss near 0
    (a decoder without the source stays above 0.5: the words of a sentence are drawn at random)."""
    data = get_task("wmt16-gnmt-tiny").load_data(DataOptions(data_dir=corpus, batch_size=32))
    torch.manual_seed(0)
    model = build_gnmt(data.dictionary, VOCAB, hidden=64, layers=4, dropout=0.0)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    sample = data.batch(0, 0, 0)
    for _ in range(100):
        logits = model(**sample["net_input"])[0]
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), sample["target"].reshape(-1),
                                                 ignore_index=data.dictionary.pad())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.2


def test_the_schedule_at_its_boundaries():
    s = gnmt_schedule()
    expected = {0.0: 2e-5, 0.0625: 2e-4, 0.125: 2e-3, 1.0: 2e-3, 3.7499: 2e-3, 3.75: 1e-3, 4.0: 1e-3,
                4.1649: 1e-3, 4.165: 5e-4, 4.5799: 5e-4, 4.58: 2.5e-4, 5.0: 2.5e-4, 6.0: 2.5e-4}
    for epoch, lr in expected.items():
        assert s(epoch) == pytest.approx(lr, rel=1e-9), epoch
    assert s.epochs == 5.0


def test_pruning_covers_embeddings_lstm_and_attention_and_can_keep_attention_dense():
    torch.manual_seed(0)
    model = build_gnmt(Dictionary(), 60, hidden=16, layers=4)
    names = weight_matrices(model)
    assert "encoder.embed_tokens.weight" in names and "decoder.embed_tokens.weight" not in names  # shared once
    assert {"encoder.layers.0.weight_ih_l0_reverse", "decoder.layers.3.weight_hh_l0",
            "decoder.attention.linear_q.weight", "decoder.attention.linear_k.weight",
            "decoder.classifier.weight"} <= set(names)
    assert not any(n.endswith("bias") or n.endswith(".v") for n in names)
    weights = dict(model.named_parameters())
    mask = {n: torch.ones_like(weights[n], dtype=torch.bool) for n in names}
    total = sum(m.numel() for m in mask.values())
    pruned = get_pruning("global-magnitude").prune(weights, mask, 0.2, {}, model, 0)
    assert sum(int(m.sum()) for m in pruned.values()) == round(0.2 * total)
    assert not pruned["decoder.attention.linear_q.weight"].all()
    kept = get_pruning("global-magnitude-no-attention").prune(weights, mask, 0.2, {}, model, 0)
    assert kept["decoder.attention.linear_q.weight"].all() and kept["decoder.attention.linear_k.weight"].all()
    assert abs(sum(int(m.sum()) for m in kept.values()) - 0.2 * total) <= 1
    sparse, dense = gnmt_flops(model, pruned)
    assert dense == 2 * sum(weights[n].numel() for n in names if "embed" not in n) and sparse < dense


@pytest.fixture(scope="module")
def runs(corpus, tmp_path_factory):
    """The tiny GNMT, its base run and two retraining methods at density 0.5."""
    root = tmp_path_factory.mktemp("gnmt-store")
    outputs = {}
    for method in ("weight-rewinding", "lr-rewinding"):
        result = cli.invoke(app, ["run", method, "wmt16-gnmt-tiny", "--data-dir", str(corpus), "--store", str(root),
                                  "--batch-size", "32", "--density", "0.5", "-t", "2.5", "--seed", "0"])
        assert result.exit_code == 0, result.output
        outputs[method] = result.output
    return root, outputs


def test_two_methods_run_end_to_end_and_report_bleu(runs):
    root, outputs = runs
    rows = {r["method"]: r for r in (json.loads(p.read_text()) for p in root.glob("retrain/*/result.json"))}
    assert set(rows) == {"weight-rewinding", "lr-rewinding"}
    for row in rows.values():
        assert row["metric"] == "bleu" and 0.0 <= row["val_acc"] <= 100.0 and 0.0 <= row["test_acc"] <= 100.0
        assert row["density"] == pytest.approx(0.5, abs=1e-4)
        assert row["start_epoch"] == 2.5  # T - t on the fractional schedule
    for output in outputs.values():
        assert "(bleu, %)" not in output and "bleu" in output
    base = json.loads(next(root.glob("base/*/result.json")).read_text())
    history = json.loads(next(root.glob("base/*/history.json")).read_text())
    assert base["metric"] == "bleu" and [r["epoch"] for r in history] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert "sacrebleu" in base["metric_definition"] and "13a" in base["metric_definition"]
    assert base["parameters"] == 4_542_657
    # the rewind point at the fractional epoch 2.5 is a checkpoint of the base run
    steps = base["steps_per_epoch"]
    assert (next(root.glob("base/*")) / "checkpoints" / f"step_{round(2.5 * steps):08d}.pt").exists()
    from harness.analysis.results_table import read_store

    table = read_store(root)
    assert set(table["metric"]) == {"bleu"} and set(table["method"]) == {"weight-rewinding", "lr-rewinding"}


def test_pruned_lstm_weights_stay_zero_after_training(runs):
    root, _ = runs
    for folder in root.glob("retrain/*"):
        weights, mask = store.load(folder / "weights.pt"), store.load(folder / "mask.pt")
        lstm = [n for n in mask if "weight_ih" in n or "weight_hh" in n]
        assert len(lstm) == 2 * 9  # 4 + 4 LSTMs, the first one in both directions
        for name in [*lstm, "encoder.embed_tokens.weight", "decoder.attention.linear_k.weight"]:
            assert not mask[name].all(), name
            assert (weights[name][~mask[name]] == 0).all(), name


def test_checkpoints_round_trip(runs, corpus):
    root, _ = runs
    task = get_task("wmt16-gnmt-tiny")
    base = next(root.glob("base/*"))
    for path in sorted((base / "checkpoints").glob("step_*.pt")):
        state = store.load(path)  # weights_only=True
        model = task.make_model()
        model.load_state_dict(state["model"])
        again = {k: v.detach().clone() for k, v in model.state_dict().items()}
        assert again.keys() == state["model"].keys()
        assert all(torch.equal(again[k], state["model"][k]) for k in again)
        if path.name != "step_00000000.pt":
            assert state["optimizer"]["state"]  # Adam's moments travel with the weights
    folder = next(root.glob("retrain/*"))
    model = task.make_model()
    model.load_state_dict(store.load(folder / "weights.pt"))
    data = task.load_data(DataOptions(data_dir=corpus, batch_size=32))
    assert data.evaluate(model, "test") == json.loads((folder / "result.json").read_text())["test_acc"]
