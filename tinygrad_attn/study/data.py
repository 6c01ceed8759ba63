"""Toy translation tasks generated in code (no download): dates and digit reversal.

``date``: a date written in one of many human formats ("21 November 2026",
"nov 21, 26", "Saturday 21/11/2026", ...) is translated, character by character,
into ISO 8601 ("2026-11-21").  This is the task on which an attention model's
alignment is easy to read: the output "11" must look at "November" or at "/11/",
wherever the format put it (Bahdanau et al. 2014, figure 3, shows the same for
English-French word order).

``reverse``: a digit string is reversed ("40712" -> "21704"): the alignment is the
anti-diagonal; small and quick, for tests.

Everything is deterministic under a seed.  The date splits are disjoint *by date*:
no test date appears in training in any format, so test accuracy measures
generalisation, not recall.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

PAD, BOS, EOS = 0, 1, 2
SPECIALS = ("<pad>", "<s>", "</s>")


class Vocab:
    """Characters <-> integer ids; ids 0, 1, 2 are <pad>, <s> (begin), </s> (end)."""

    def __init__(self, chars: Sequence[str]) -> None:
        self.itos: list[str] = list(SPECIALS) + sorted(set(chars))
        self.stoi: dict[str, int] = {c: i for i, c in enumerate(self.itos)}

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError as exc:
            raise ValueError(f"Vocab.encode: character {exc.args[0]!r} in {text!r} is "
                             f"not in the vocabulary") from None

    def decode(self, ids: Sequence[int]) -> str:
        """Characters up to the first </s>; <pad> and <s> are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS:
                break
            if i > EOS:
                out.append(self.itos[i])
        return "".join(out)


@dataclass
class Split:
    """One split: source ids (N, S) and target ids (N, T), both padded with <pad>.

    ``tgt`` is ``y_1 .. y_n </s>``; the decoder input is ``<s> y_1 .. y_n``
    (:meth:`decoder_input`).  ``sources``/``targets`` keep the strings.
    """

    src: np.ndarray
    tgt: np.ndarray
    sources: list[str]
    targets: list[str]

    def __len__(self) -> int:
        return len(self.sources)

    def decoder_input(self) -> np.ndarray:
        """``<s> y_1 .. y_{T-1}``: the targets shifted right (teacher forcing)."""
        out = np.full_like(self.tgt, PAD)
        out[:, 0] = BOS
        out[:, 1:] = self.tgt[:, :-1]
        out[out == EOS] = PAD
        return out

    def batch(self, index: np.ndarray) -> "Split":
        src, tgt = self.src[index], self.tgt[index]
        s_len = int((src != PAD).sum(axis=1).max())
        t_len = int((tgt != PAD).sum(axis=1).max())
        return Split(src[:, :s_len], tgt[:, :t_len], [self.sources[i] for i in index],
                     [self.targets[i] for i in index])


@dataclass
class Task:
    """A translation task: vocabularies and train/validation/test splits."""

    name: str
    src_vocab: Vocab
    tgt_vocab: Vocab
    train: Split
    val: Split
    test: Split
    max_target_len: int  # including </s>


def _pad(rows: list[list[int]]) -> np.ndarray:
    out = np.full((len(rows), max(len(r) for r in rows)), PAD, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, :len(r)] = r
    return out


def _split(pairs: list[tuple[str, str]], src_vocab: Vocab, tgt_vocab: Vocab) -> Split:
    src = _pad([src_vocab.encode(s) for s, _ in pairs])
    tgt = _pad([tgt_vocab.encode(t) + [EOS] for _, t in pairs])
    return Split(src, tgt, [s for s, _ in pairs], [t for _, t in pairs])


# ----------------------------------------------------------------------------- dates

MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august",
          "september", "october", "november", "december"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
FIRST_YEAR, LAST_YEAR = 1970, 2069  # two-digit years: 70-99 -> 19xx, 00-69 -> 20xx


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _formats() -> list[Callable[[dt.date], str]]:
    """The human formats, each a function of a date (the day-month order of numeric
    formats is always day first, so no input is ambiguous)."""
    def mon(d: dt.date) -> str:
        return MONTHS[d.month - 1]

    def wd(d: dt.date) -> str:
        return WEEKDAYS[d.weekday()]

    yy = "{:02d}".format
    return [
        lambda d: f"{d.day} {mon(d).capitalize()} {d.year}",              # 21 November 2026
        lambda d: f"{mon(d)[:3]} {d.day}, {yy(d.year % 100)}",           # nov 21, 26
        lambda d: f"{wd(d).capitalize()} {d.day:02d}/{d.month:02d}/{d.year}",
        lambda d: f"{mon(d).capitalize()} {d.day}, {d.year}",            # November 21, 2026
        lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",                 # 21.11.2026
        lambda d: f"{d.day}/{d.month}/{yy(d.year % 100)}",               # 21/11/26
        lambda d: f"{wd(d)[:3].capitalize()}, {d.day} {mon(d)[:3].capitalize()} {d.year}",
        lambda d: f"the {_ordinal(d.day)} of {mon(d)} {d.year}",         # the 21st of ...
        lambda d: f"{d.day:02d}-{mon(d)[:3].upper()}-{d.year}",          # 21-NOV-2026
        lambda d: f"{wd(d)}, {mon(d)} {d.day}, {d.year}",                # saturday, ...
        lambda d: f"{d.year} {mon(d)[:3]} {d.day}",                      # 2026 nov 21
        lambda d: f"{mon(d).upper()} {_ordinal(d.day).upper()} {d.year}",
        lambda d: f"{d.day} {mon(d)[:3]} {yy(d.year % 100)}",            # 21 nov 26
        lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",                 # 2026/11/21
    ]


DATE_FORMATS = _formats()


def format_date(date: dt.date, fmt: int) -> str:
    """``date`` written in human format number ``fmt`` (0 .. len(DATE_FORMATS)-1)."""
    return DATE_FORMATS[fmt](date)


def date_task(n_train: int = 20000, n_val: int = 1000, n_test: int = 1000,
              seed: int = 0) -> Task:
    """Dates in many formats -> ISO ``YYYY-MM-DD``; splits disjoint by date.

    Every date from 1970-01-01 to 2069-12-31 is shuffled with ``seed``; the first
    ``n_test`` dates are the test split, the next ``n_val`` the validation split, the
    rest are the pool the ``n_train`` training examples are drawn from.  Each example
    takes a format uniformly at random.
    """
    for name, n in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        if not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"date_task: {name} must be a positive integer, got {n!r}")
    rng = np.random.default_rng(seed)
    first = dt.date(FIRST_YEAR, 1, 1).toordinal()
    days = np.arange(first, dt.date(LAST_YEAR, 12, 31).toordinal() + 1)
    if n_val + n_test >= len(days):
        raise ValueError(f"date_task: n_val + n_test = {n_val + n_test} leaves no dates "
                         f"for training (there are {len(days)})")
    days = rng.permutation(days)
    test_days, val_days = days[:n_test], days[n_test:n_test + n_val]
    train_days = rng.choice(days[n_test + n_val:], size=n_train)

    def pairs(ordinals: np.ndarray) -> list[tuple[str, str]]:
        fmts = rng.integers(0, len(DATE_FORMATS), size=len(ordinals))
        out = []
        for o, f in zip(ordinals, fmts):
            d = dt.date.fromordinal(int(o))
            out.append((format_date(d, int(f)), d.isoformat()))
        return out

    train, val, test = pairs(train_days), pairs(val_days), pairs(test_days)
    src_chars = {c for s, _ in train + val + test for c in s}
    src_chars |= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ,./-")
    src_vocab, tgt_vocab = Vocab(sorted(src_chars)), Vocab("0123456789-")
    return Task("date", src_vocab, tgt_vocab, _split(train, src_vocab, tgt_vocab),
                _split(val, src_vocab, tgt_vocab), _split(test, src_vocab, tgt_vocab),
                max_target_len=11)


# ----------------------------------------------------------------------------- reversal

def reverse_task(n_train: int = 2000, n_val: int = 200, n_test: int = 200,
                 min_len: int = 3, max_len: int = 6, seed: int = 0) -> Task:
    """Digit strings of ``min_len``..``max_len`` digits -> the same digits reversed."""
    if not 1 <= min_len <= max_len:
        raise ValueError(f"reverse_task: need 1 <= min_len <= max_len, got min_len="
                         f"{min_len}, max_len={max_len}")
    rng = np.random.default_rng(seed)

    def pairs(n: int) -> list[tuple[str, str]]:
        out = []
        for _ in range(n):
            s = "".join(map(str, rng.integers(0, 10, size=int(rng.integers(min_len,
                                                                            max_len + 1)))))
            out.append((s, s[::-1]))
        return out

    vocab = Vocab("0123456789")
    return Task("reverse", vocab, vocab, _split(pairs(n_train), vocab, vocab),
                _split(pairs(n_val), vocab, vocab), _split(pairs(n_test), vocab, vocab),
                max_target_len=max_len + 1)


TASKS: dict[str, Callable[..., Task]] = {"date": date_task, "reverse": reverse_task}


def make_task(name: str, seed: int = 0, **kwargs: int) -> Task:
    """The task called ``name`` ("date" or "reverse")."""
    if name not in TASKS:
        raise ValueError(f"make_task: unknown task {name!r}; choose one of {sorted(TASKS)}")
    return TASKS[name](seed=seed, **kwargs)
