"""Attention learns: the toy tasks (study/data.py), the two encoder-decoders
(study/models.py), the training loop (study/train.py), the heat maps (study/plots.py) and
the progress line (verify/progress.py).  Fast versions only: a few hundred steps on the
digit-reversal task; the full date runs are in docs/study.md, never here."""
from __future__ import annotations

import datetime as dt
import io

import numpy as np
import pytest

import tinygrad_attn as ta
from tinygrad_attn import nn
from tinygrad_attn.study import data, plots, train
from tinygrad_attn.study.data import EOS, PAD
from tinygrad_attn.verify.progress import Progress

RNN_SIZES = dict(emb=16, hidden=32, dec_hidden=32, attn=32)
TF_SIZES = dict(d=32, heads=2, layers=1, ff=64, max_len=8)


@pytest.fixture(scope="module")
def rev() -> data.Task:
    return data.reverse_task(n_train=2000, n_val=100, n_test=200, min_len=3, max_len=5,
                             seed=0)


@pytest.fixture(scope="module")
def dates() -> data.Task:
    return data.date_task(n_train=3000, n_val=300, n_test=300, seed=0)


# ----------------------------------------------------------------------------- data

def test_date_formats_write_the_issue_examples():
    # issue 9: "21 November 2026", "nov 21, 26", "Saturday 21/11/2026" -> "2026-11-21"
    day = dt.date(2026, 11, 21)
    written = {data.format_date(day, k) for k in range(len(data.DATE_FORMATS))}
    assert {"21 November 2026", "nov 21, 26", "Saturday 21/11/2026"} <= written
    assert len(written) == len(data.DATE_FORMATS)          # every format differs


def test_every_date_example_targets_its_iso_date(dates):
    for split in (dates.train, dates.val, dates.test):
        for src, tgt in zip(split.sources[:300], split.targets[:300]):
            day = dt.date.fromisoformat(tgt)
            assert src in {data.format_date(day, k) for k in range(len(data.DATE_FORMATS))}
            assert data.FIRST_YEAR <= day.year <= data.LAST_YEAR


def test_two_digit_years_follow_the_posix_pivot():
    # 70..99 -> 19xx, 00..69 -> 20xx, so "nov 21, 26" is unambiguous
    assert data.format_date(dt.date(1985, 3, 4), 1) == "mar 4, 85"
    assert data.format_date(dt.date(2026, 3, 4), 1) == "mar 4, 26"


def test_date_splits_are_disjoint_by_date_and_deterministic(dates):
    train_days = set(dates.train.targets)
    assert not train_days & set(dates.test.targets)
    assert not train_days & set(dates.val.targets)
    assert not set(dates.val.targets) & set(dates.test.targets)
    again = data.date_task(n_train=3000, n_val=300, n_test=300, seed=0)
    assert again.train.sources == dates.train.sources
    np.testing.assert_array_equal(again.train.src, dates.train.src)
    other = data.date_task(n_train=3000, n_val=300, n_test=300, seed=1)
    assert other.train.sources != dates.train.sources


def test_vocab_round_trips_and_names_an_unknown_character(dates):
    s = "Saturday 21/11/2026"
    assert dates.src_vocab.decode(dates.src_vocab.encode(s)) == s
    assert dates.tgt_vocab.decode(dates.tgt_vocab.encode("2026-11-21") + [EOS, 5]) == \
        "2026-11-21"                                          # stops at </s>
    with pytest.raises(ValueError, match="'#'"):
        dates.src_vocab.encode("21#11")


def test_targets_end_with_eos_and_decoder_input_is_shifted(rev):
    b = rev.train.batch(np.arange(8))
    for row, text in zip(b.tgt, b.targets):
        assert rev.tgt_vocab.decode(row) == text
        assert row[len(text)] == EOS
    d = b.decoder_input()
    assert np.all(d[:, 0] == data.BOS)
    np.testing.assert_array_equal(d[:, 1:][b.tgt[:, 1:] != PAD], b.tgt[:, :-1][b.tgt[:, 1:]
                                                                             != PAD])
    assert all(s[::-1] == t for s, t in zip(rev.train.sources, rev.train.targets))


def test_bad_task_arguments_are_refused():
    with pytest.raises(ValueError, match="unknown task 'french'"):
        data.make_task("french")
    with pytest.raises(ValueError, match="n_train"):
        data.date_task(n_train=0)
    with pytest.raises(ValueError, match="min_len"):
        data.reverse_task(min_len=4, max_len=3)


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("kind,sizes", [("rnn", RNN_SIZES), ("transformer", TF_SIZES)])
def test_padding_never_changes_a_rows_output(rev, kind, sizes):
    # a row's logits are the same alone and in a batch padded to a longer row: masks
    # in the bidirectional encoder and in every attention keep padding out
    model = train.build_model(kind, rev, seed=3, dtype=np.float64, **sizes)
    b = rev.test.batch(np.arange(10))
    short = int(np.argmin((b.src != PAD).sum(1)))
    assert (b.src[short] == PAD).any()
    tgt_in = b.decoder_input()
    batched, _ = model(b.src, tgt_in)
    n = int((b.src[short] != PAD).sum())
    alone, _ = model(b.src[short:short + 1, :n], tgt_in[short:short + 1])
    np.testing.assert_allclose(batched.data[short], alone.data[0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind,sizes", [("rnn", RNN_SIZES), ("transformer", TF_SIZES)])
def test_attention_weights_are_distributions_over_real_characters(rev, kind, sizes):
    model = train.build_model(kind, rev, seed=4, **sizes)
    b = rev.test.batch(np.arange(10))
    _, w = model.greedy(b.src, rev.max_target_len)         # rnn (B,T,S); tf (B,L,H,T,S)
    pad = (b.src == PAD).reshape((10,) + (1,) * (w.ndim - 2) + (b.src.shape[1],))
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)
    assert np.all(np.where(np.broadcast_to(pad, w.shape), w, 0.0) == 0.0)


def test_rnnsearch_gradient_passes_gradcheck_through_encoder_attention_and_decoder(rev):
    model = train.build_model("rnn", rev, seed=5, dtype=np.float64,
                              emb=3, hidden=2, dec_hidden=2, attn=2)
    b = rev.train.batch(np.arange(2))

    def loss(*params):
        logits, _ = model(b.src, b.decoder_input())
        return nn.cross_entropy(logits, b.tgt, ignore_index=PAD)

    att = model.decoder.attention
    checked = [att.W_q, att.W_k, att.v, model.decoder.cell.W_h, model.enc_bwd.W_h,
               model.init.W]
    report = ta.gradcheck(loss, *checked)
    assert report.ok, str(report)


def test_transformer_gradient_passes_gradcheck(rev):
    model = train.build_model("transformer", rev, seed=6, dtype=np.float64,
                              d=4, heads=2, layers=1, ff=4, max_len=8)
    b = rev.train.batch(np.arange(2))

    def loss(*params):
        logits, _ = model(b.src, b.decoder_input())
        return nn.cross_entropy(logits, b.tgt, ignore_index=PAD)

    layer = model.dec[0]
    checked = [layer["cross"].W_q, layer["self_attn"].W_k, model.enc[0]["attn"].W_v,
               model.src_pos, layer["ln2"].gamma]
    report = ta.gradcheck(loss, *checked)
    assert report.ok, str(report)


# ----------------------------------------------------------------------------- training

def test_rnnsearch_learns_reversal_in_120_steps(rev):
    # stated targets: loss falls by >= 50x, >= 90% exact match on unseen strings
    res = train.train(rev, "rnn", steps=120, batch_size=32, lr=1e-2, warmup=20,
                      sizes=RNN_SIZES, progress=False, seed=0)
    assert res.first_loss / res.final_loss >= 50, res.summary()
    assert res.test_accuracy >= 0.90, res.summary()


def test_transformer_learns_reversal_in_300_steps(rev):
    res = train.train(rev, "transformer", steps=300, batch_size=32, lr=3e-3, warmup=20,
                      sizes=TF_SIZES, progress=False, seed=0)
    assert res.first_loss / res.final_loss >= 50, res.summary()
    assert res.test_accuracy >= 0.90, res.summary()


@pytest.mark.parametrize("kind,sizes", [("rnn", RNN_SIZES), ("transformer", TF_SIZES)])
def test_training_is_deterministic_under_a_seed(rev, kind, sizes):
    def run(seed):
        return train.train(rev, kind, steps=8, batch_size=16, sizes=sizes, progress=False,
                           seed=seed).losses

    first = run(0)
    assert run(0) == first                                    # bit for bit
    assert run(1) != first


@pytest.mark.parametrize("kind,sizes", [("rnn", RNN_SIZES), ("transformer", TF_SIZES)])
def test_saved_parameters_load_back_exactly(rev, kind, sizes, tmp_path):
    res = train.train(rev, kind, steps=5, batch_size=16, sizes=sizes, progress=False,
                      out_dir=str(tmp_path), heatmap_examples=[])
    loaded, trained = train.load_model(res.params_path), res.net
    fresh = train.build_model(kind, rev, seed=0, **sizes)
    for (n1, p1), (n2, p2) in zip(loaded.named_parameters(), trained.named_parameters()):
        assert n1 == n2 and p1.dtype == p2.dtype == np.float32
        np.testing.assert_array_equal(p1.data, p2.data)
    # the file holds the trained values, not the initial ones
    assert any(not np.array_equal(p.data, q.data) for p, q in
               zip(loaded.parameters(), fresh.parameters()))
    with np.load(res.params_path) as f:
        assert sorted(f.files) == sorted(dict(loaded.named_parameters()))
    b = rev.test.batch(np.arange(20))
    ids1, w1 = loaded.greedy(b.src, rev.max_target_len)
    ids2, w2 = trained.greedy(b.src, rev.max_target_len)
    np.testing.assert_array_equal(ids1, ids2)
    np.testing.assert_array_equal(w1, w2)


def test_progress_line_shows_loss_and_accuracy(rev):
    out = io.StringIO()
    train.train(rev, "rnn", steps=4, batch_size=8, sizes=RNN_SIZES, log_every=2, stream=out,
                progress=True)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[-1].startswith("step 4/4")
    assert "loss" in lines[-1] and "tok-acc" in lines[-1]


def test_progress_line_is_off_when_the_stream_is_not_a_terminal(rev):
    out = io.StringIO()
    train.train(rev, "rnn", steps=2, batch_size=8, sizes=RNN_SIZES, log_every=1, stream=out)
    assert out.getvalue() == ""


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_redraws_one_line_on_a_terminal_and_ends_it():
    out = _Terminal()
    with Progress(4, label="step", stream=out, width=8) as bar:
        bar.update(2, "a long description")
        bar.update(4, "done")
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    last = text.split("\r")[-1]
    assert last.startswith("step 4/4 [========] done")
    assert len(last.rstrip("\n")) >= len("step 2/4 [====>   ] a long description")
    assert Progress(3, stream=out, width=3).line(1, "x").startswith("1/3 [=> ] x ")


def test_heat_maps_are_written_for_each_model(rev, tmp_path):
    paths = []
    for kind, sizes in (("rnn", RNN_SIZES), ("transformer", TF_SIZES)):
        model = train.build_model(kind, rev, seed=0, **sizes)
        paths += plots.plot_alignments(model, rev, ["12345", "907"], str(tmp_path), kind)
    assert len(paths) == 4
    for p in paths:
        with open(p, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def test_alignment_panel_draws_the_rnn_and_refuses_the_transformer(rev, tmp_path):
    rnn = train.build_model("rnn", rev, seed=0, **RNN_SIZES)
    path = plots.plot_alignment_panel(rnn, rev, ["123", "4567", "89012"], str(tmp_path /
                                                                             "p.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    tf = train.build_model("transformer", rev, seed=0, **TF_SIZES)
    with pytest.raises(TypeError, match="needs an RNNSearch"):
        plots.plot_alignment_panel(tf, rev, ["123"], str(tmp_path / "q.png"))


def test_cli_trains_and_writes_parameters_and_heat_maps(tmp_path, capsys):
    code = train.main_train(["reverse", "--model", "transformer", "--steps", "3",
                             "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "exact match test" in out and "heat map:" in out
    assert (tmp_path / "reverse-transformer" / "transformer.npz").exists()


def test_train_refuses_an_unknown_model(rev):
    with pytest.raises(ValueError, match="unknown model 'lstm'"):
        train.train(rev, "lstm", steps=1)
