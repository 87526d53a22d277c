"""TextClassifier: learns word order (which a bag of words cannot), padding invariance, save/load, metrics,
bad inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lstmkit.errors import ConfigError, DataError, ModelDirError
from lstmkit.models.classifier_net import POOLINGS, ClassifierNet, ClassifierNetConfig
from lstmkit.tasks.classifier import TextClassifier, confusion_matrix, scores, stratified_split

FILLERS = ["the", "a", "of", "to", "and", "in", "is", "it", "on", "at"]


def word_order(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Each text holds "good" and "bad" once, with fillers before, between and after them; the label says
    which comes first. Every class has the same unigram and bigram counts, so TF-IDF + LR is at chance."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        parts = [list(rng.choice(FILLERS, rng.integers(1, 4))) for _ in range(3)]
        first, second = ("good", "bad") if rng.random() < 0.5 else ("bad", "good")
        texts.append(" ".join([*parts[0], first, *parts[1], second, *parts[2]]))
        labels.append(f"{first}_first")
    return texts, labels


FAST = {"steps": 120, "hidden_size": 24, "embed_dim": 16, "batch_size": 32, "lr": 1e-2, "dropout": 0.0, "val_fraction": 0.1}


@pytest.fixture(scope="module")
def fitted():
    torch.manual_seed(0)
    texts, labels = word_order(600, seed=1)
    return TextClassifier(**FAST).fit(texts, labels)


def test_learns_word_order_that_a_bag_of_words_cannot(fitted):
    texts, labels = word_order(400, seed=2)
    ev = fitted.evaluate(texts, labels)
    assert ev.results["lstm"]["accuracy"] > 0.9
    assert ev.results["lstm"]["macro_f1"] > 0.9
    assert ev.results["tfidf_lr"]["accuracy"] < 0.65  # the bag of words is at chance, as designed
    assert fitted.classes_ == ["bad_first", "good_first"]
    assert list(fitted.predict(["the good a bad of", "of bad in good the"])) == ["good_first", "bad_first"]


def test_evaluate_confusion_and_majority(fitted):
    texts, labels = word_order(200, seed=3)
    ev = fitted.evaluate(texts, labels)
    for r in ev.results.values():
        cm = np.asarray(r["confusion"])
        assert cm.sum() == 200
        assert r["accuracy"] == pytest.approx(np.trace(cm) / 200)
        np.testing.assert_array_equal(cm.sum(axis=1), [labels.count(c) for c in ev.classes])
    majority = ev.classes[int(np.argmax(fitted.class_counts_))]
    assert ev.results["majority"]["accuracy"] == pytest.approx(labels.count(majority) / 200)
    assert list(ev.table()["model"]) == ["lstm", "tfidf_lr", "majority"]


def test_prediction_does_not_depend_on_the_batch_padding(fitted):
    short = "the good of bad"
    long = " ".join(["a good"] + ["the"] * 60 + ["bad in"])
    alone = fitted.predict_proba([short])
    padded = fitted.predict_proba([short, long])  # one batch: short is padded to the long one's length
    np.testing.assert_allclose(padded[0], alone[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(alone.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_net_padding_invariance_every_pooling(pooling):
    torch.manual_seed(0)
    net = ClassifierNet(ClassifierNetConfig(vocab_size=20, n_classes=3, embed_dim=8, hidden_size=6, num_layers=2, pooling=pooling)).eval()
    ids = torch.randint(4, 20, (3, 7))
    lengths = torch.tensor([7, 3, 1])
    ids[1, 3:], ids[2, 1:] = 0, 0
    with torch.no_grad():
        base = net(ids, lengths)
        extra = net(torch.cat([ids, torch.zeros(3, 9, dtype=torch.long)], dim=1), lengths)
        single = torch.cat([net(ids[i : i + 1, : int(lengths[i])], lengths[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(extra, base, rtol=0, atol=1e-6)
    torch.testing.assert_close(single, base, rtol=0, atol=1e-6)


def test_save_load_gives_identical_probabilities(fitted, tmp_path):
    fitted.save(tmp_path / "m")
    names = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert names == ["baseline.json", "config.json", "tokenizer.json", "weights.safetensors"]
    assert json.loads((tmp_path / "m" / "tokenizer.json").read_text())["vocab"][:4] == ["<pad>", "<unk>", "<bos>", "<eos>"]
    again = TextClassifier.load(tmp_path / "m")
    texts, labels = word_order(50, seed=4)
    np.testing.assert_array_equal(again.predict_proba(texts), fitted.predict_proba(texts))
    np.testing.assert_array_equal(again.baseline_.predict_proba(texts), fitted.baseline_.predict_proba(texts))
    assert again.evaluate(texts, labels).to_dict() == fitted.evaluate(texts, labels).to_dict()
    assert again.get_params() == fitted.get_params()


def test_load_rejects_tampered_or_foreign_dirs(fitted, tmp_path):
    d = fitted.save(tmp_path / "m")
    with (d / "weights.safetensors").open("r+b") as f:
        f.seek(-4, 2)
        f.write(b"\x00\x01\x02\x03")
    with pytest.raises(ModelDirError, match="checksum"):
        TextClassifier.load(d)
    with pytest.raises(ModelDirError, match="does not exist"):
        TextClassifier.load(tmp_path / "nothing")


def test_same_seed_same_model():
    texts, labels = word_order(200, seed=5)
    kw = dict(FAST, steps=20, baseline=False)
    a = TextClassifier(**kw).fit(texts, labels).predict_proba(texts[:20])
    b = TextClassifier(**kw).fit(texts, labels).predict_proba(texts[:20])
    np.testing.assert_array_equal(a, b)


def test_metrics_match_hand_computed_values():
    cm = confusion_matrix(np.array([0, 0, 1, 1, 2, 2]), np.array([0, 1, 1, 1, 0, 0]), 3)
    assert cm.tolist() == [[1, 1, 0], [0, 2, 0], [2, 0, 0]]
    s = scores(cm)
    # F1 per class: 2·1/(3+2)=0.4, 2·2/(3+2)=0.8, 0 → macro 0.4
    assert s["accuracy"] == pytest.approx(0.5)
    assert s["f1"] == pytest.approx([0.4, 0.8, 0.0])
    assert s["macro_f1"] == pytest.approx(0.4)


def test_balanced_class_weights_and_stratified_split():
    y = np.array([0] * 80 + [1] * 20)
    tr, va = stratified_split(y, 0.1, seed=0)
    assert len(va) == 10 and (y[va] == 1).sum() == 2 and len(np.intersect1d(tr, va)) == 0
    m = TextClassifier(class_weight="balanced")
    m.classes_ = ["a", "b"]
    assert m._class_weights(y) == pytest.approx([100 / (2 * 80), 100 / (2 * 20)])
    m.class_weight = "sqrt"
    assert m._class_weights(y) == pytest.approx([(100 / 160) ** 0.5, (100 / 40) ** 0.5])
    m.class_weight = {"b": 3.0}
    assert m._class_weights(y) == [1.0, 3.0]


def test_bad_inputs_raise_clear_errors(fitted):
    texts, labels = word_order(40, seed=6)
    with pytest.raises(DataError, match=r"empty or missing text\(s\) at row\(s\) 3"):
        TextClassifier(**FAST).fit(texts[:2] + ["   "] + texts[3:], labels)
    with pytest.raises(DataError, match="single class"):
        TextClassifier(**FAST).fit(texts, ["pos"] * len(texts))
    with pytest.raises(DataError, match="missing label"):
        TextClassifier(**FAST).fit(texts, labels[:-1] + [None])
    with pytest.raises(DataError, match="one label per text"):
        TextClassifier(**FAST).fit(texts, labels[:-1])
    with pytest.raises(DataError, match="not seen at fit"):
        fitted.evaluate(texts, ["neutral"] * len(texts))
    with pytest.raises(DataError, match="one string"):
        fitted.predict("just one string")
    with pytest.raises(ConfigError, match="not fitted"):
        TextClassifier().predict(["x"])
    with pytest.raises(ConfigError, match="pooling"):
        TextClassifier(pooling="sum").fit(texts, labels)
    # characters and words never seen at fit are handled, not a crash
    assert fitted.predict(["zzz ünïcödé 😀"]).shape == (1,)
