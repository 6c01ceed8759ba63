"""The bad-input catalogue (tests/catalogue.py, shown in docs/reliability.md): every bad
input gets the error or result its row says, the error names the argument and the value
or shapes at fault and is raised by the package (not from deep inside NumPy), and the
document shows exactly what the rows give now."""
from __future__ import annotations

import re

import pytest
from catalogue import DOC, END, ROWS, START, run, table


@pytest.mark.parametrize("row", ROWS, ids=[f"{r.kind}: {r.what}" for r in ROWS])
def test_each_bad_input_gets_what_the_catalogue_says(row):
    got = run(row)
    if row.raises is None:
        assert got.error is None, f"{row.code} raised {got.error.__name__}: {got.message}"
    else:
        assert got.error is not None and issubclass(got.error, row.raises), \
            f"{row.code} gave {got.error} {got.message!r}, not {row.raises.__name__}"
        assert got.inside, f"{row.code}: {got.error.__name__} raised from outside the package"
    assert re.search(row.match, got.message), f"{row.code}: {got.message!r}"


def test_the_catalogue_covers_at_least_40_bad_inputs_of_every_kind():
    kinds = {r.kind for r in ROWS}
    assert len(ROWS) >= 40
    assert {"shapes", "axes", "masks", "dtypes", "NaN and inf", "empty arrays", "Functions",
            "command line", "ops"} <= kinds


def test_the_document_shows_what_the_rows_give_now():
    text = DOC.read_text(encoding="utf-8")
    shown = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert shown == table().strip(), "docs/reliability.md is stale: run python tests/catalogue.py"
