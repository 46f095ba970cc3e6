"""The text plugin's networks: text-rnn (word ids -> LSTM/GRU classifier) and char-rnn
(character language model): id sequences, fitting a tiny corpus, bits per character
against hand-computed values, model-file round trips, sampling and bad input."""

import math
import os

import numpy as np
import pytest
from click.testing import CliRunner
from nanoml_text.char_rnn import CharRNN, bits_per_character
from nanoml_text.text_rnn import TextRNN, padded_ids

from nanoml import Learner
from nanoml.cli import cli
from nanoml.errors import InputError, ParameterError

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "fortunes")
TOPICS = [["compile", "debug", "kernel", "unix"], ["quark", "proton", "galaxy", "atom"],
          ["sing", "rhyme", "verse", "melody"]]
DOCS = [" ".join(words[i:] + words[:i][:2]) for words in TOPICS for i in range(4)]
LABELS = np.repeat([0, 1, 2], 4)


def test_padded_ids_left_pad_and_truncate():
    # documents 0 (3 tokens), 1 (none), 2 (5 tokens, cut to the first 4); -1 is unknown
    columns = np.array([4, -1, 0, 1, 2, 3, 5, 6])
    rows = np.array([0, 0, 0, 2, 2, 2, 2, 2])
    expected = [[0, 6, 1, 2], [0, 0, 0, 0], [3, 4, 5, 7]]
    np.testing.assert_array_equal(padded_ids(columns, rows, 3, 4), expected)


@pytest.mark.parametrize("cell, pooling, bag", [("gru", "max", True), ("lstm", "last", False)])
def test_text_rnn_fits_a_tiny_corpus_and_round_trips(tmp_path, cell, pooling, bag):
    model = TextRNN(cell=cell, pooling=pooling, bag=bag, embedding_dim=8, hidden_size=16,
                    dropout=0.0, min_df=1, epochs=60, batch_size=12, lr=0.02,
                    validation_fraction=0.0)
    model.fit(DOCS, LABELS)
    proba = model.predict_proba(DOCS + ["unknown words only"])
    assert proba.shape == (13, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert model.score(DOCS, LABELS) == 1.0
    model.save(tmp_path / "m.npz")
    back = Learner.load(tmp_path / "m.npz")
    np.testing.assert_allclose(back.predict_proba(DOCS), proba[:12], rtol=1e-5, atol=1e-7)


def test_text_rnn_bad_input_and_settings():
    with pytest.raises(InputError, match="holds no words"):
        TextRNN(epochs=1).fit(["", "a b", "  "], [0, 1, 0])
    with pytest.raises(InputError, match="must be text"):
        TextRNN(epochs=1).fit(np.array([[1.0], [2.0]]), [0, 1])
    with pytest.raises(ParameterError, match="cell"):
        TextRNN(cell="transformer").fit(DOCS, LABELS)


def test_cli_runs_text_rnn_on_raw_text_and_bad_vocabulary_is_one_line(tmp_path):
    out = tmp_path / "run"
    args = ["run", "text-rnn", "--dataset", "fortunes-all", "--data-dir", FIXTURE]
    result = CliRunner().invoke(cli, [*args, "--set", "epochs=1", "--set", "min_df=1",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert Learner.load(out / "model.npz").name == "text-rnn"  # not wrapped in a pipeline
    result = CliRunner().invoke(cli, [*args, "--set", "min_df=50", "--out",
                                      str(tmp_path / "r")])
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1
    assert "min_df" in result.output


def test_bits_per_character_against_hand_values():
    # uniform over 4 characters: 2 bits; p = 1/2 then p = 1/4: (1 + 2) / 2 bits
    assert bits_per_character(np.zeros((3, 4)), np.array([0, 1, 3])) == pytest.approx(2.0)
    logits = np.log([[0.5, 0.25, 0.25], [0.25, 0.5, 0.25]])
    assert bits_per_character(logits, np.array([0, 2])) == pytest.approx(1.5)


TEXT = ["the cat sat on the mat", "the cat ate the rat", "a bat sat on the hat"]


def test_char_rnn_learns_text_scores_it_and_round_trips(tmp_path):
    model = CharRNN(embedding_dim=8, hidden_size=32, seq_length=16, min_count=1, epochs=40,
                    batch_size=8, lr=0.02, validation_fraction=0.0).fit(TEXT * 6)
    # before training the model is near uniform over its 14 ids (log2 14 = 3.8 bits)
    bits = model.bits_per_character(TEXT)
    assert bits < 1.5
    assert model.evaluate(TEXT) == {"bits_per_character": bits}
    model.save(tmp_path / "lm.npz")
    back = Learner.load(tmp_path / "lm.npz")
    assert back.bits_per_character(TEXT) == pytest.approx(bits, rel=1e-6)
    samples = back.sample(3, length=40, temperature=0.5, seed=1)
    assert len(samples) == 3 and all(set(s) <= set("".join(TEXT)) for s in samples)
    assert samples == model.sample(3, length=40, temperature=0.5, seed=1)


def test_char_rnn_anneals_its_learning_rate_once_an_epoch():
    seen = []

    class Recorded(CharRNN):
        def lr_schedule(self, optimizer, epochs):
            schedule = super().lr_schedule(optimizer, epochs)
            step = schedule.step

            def recorded():
                step()
                seen.append(optimizer.lr)

            schedule.step = recorded
            return schedule

    Recorded(embedding_dim=4, hidden_size=8, seq_length=4, min_count=1, epochs=4, lr=0.01,
             validation_fraction=0.0).fit(TEXT)
    np.testing.assert_allclose(seen, [0.01 * (1 + math.cos(math.pi * e / 4)) / 2
                                      for e in (1, 2, 3, 4)])
    assert CharRNN(annealing="none").lr_schedule(None, 4) is None
    with pytest.raises(ParameterError, match="annealing"):
        CharRNN(annealing="linear").fit(TEXT)


def test_char_rnn_bits_match_an_untrained_models_own_softmax():
    model = CharRNN(embedding_dim=4, hidden_size=8, seq_length=4, min_count=1, epochs=1,
                    validation_fraction=0.0).fit(["abcab", "ca"])
    # stream: sep a b c a b sep c a sep -> scored one stream at a time, state carried
    from nanoml.tensor import Tensor, no_grad

    ids = model._ids(model._stream(["cab"]))
    with no_grad():
        logits, _ = model.module_(Tensor(ids[None, :-1].astype(np.float32)))
    expected = np.mean([
        math.log2(np.exp(row).sum()) - row[t] / math.log(2) for row, t in
        zip(logits.data.astype(np.float64), ids[1:], strict=True)])
    assert model.bits_per_character(["cab"]) == pytest.approx(expected, rel=1e-5)


def test_char_rnn_run_writes_samples_and_empty_text_is_one_line(tmp_path):
    out = tmp_path / "run"
    args = ["run", "char-rnn", "--dataset", "fortunes-all", "--data-dir", FIXTURE]
    result = CliRunner().invoke(cli, [*args, "--set", "epochs=1", "--set", "hidden_size=8",
                                      "--set", "seq_length=8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "bits_per_character" in result.output
    assert "temperature 0.5" in (out / "samples.txt").read_text()
    with pytest.raises(InputError, match="every document is empty"):
        CharRNN().fit(["", ""])
