"""Property-based tests (hypothesis) of the postings loader and of the metric."""
from __future__ import annotations

import io
import string
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import InputError
from common.metric import per_posting_scores, score_pairs, score_submission
from common.postings import MAX_TITLE_CHARS, load_postings

SETTINGS = settings(max_examples=80, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# ----------------------------------------------------------------------------- postings loader

ids = st.text(alphabet=string.ascii_letters + string.digits + "-_.:/#é中", min_size=1,
              max_size=12)
# Any text a seller might type, separators and quotes included; surrogates cannot be encoded.
titles = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=80)
phashes = st.one_of(st.none(), st.text(alphabet="0123456789abcdefABCDEF", min_size=16,
                                       max_size=16))


@st.composite
def postings_tables(draw) -> pl.DataFrame:
    n = draw(st.integers(1, 15))
    frame = pl.DataFrame({
        "posting_id": draw(st.lists(ids, min_size=n, max_size=n, unique=True)),
        "title": draw(st.lists(st.one_of(titles, st.just("x" * (MAX_TITLE_CHARS + 5))),
                               min_size=n, max_size=n)),
    }, schema={"posting_id": pl.String, "title": pl.String})
    if draw(st.booleans()):
        frame = frame.with_columns(pl.Series("image_phash", draw(
            st.lists(phashes, min_size=n, max_size=n)), dtype=pl.String))
    if draw(st.booleans()):
        frame = frame.with_columns(pl.Series("label_group", draw(
            st.lists(st.sampled_from(["g1", "g2", "g3"]), min_size=n, max_size=n))))
    return frame


def _write_and_load(frame: pl.DataFrame, form: str) -> pl.DataFrame:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / ("p.parquet" if form == "parquet" else "p.csv")
        if form == "parquet":
            frame.write_parquet(path)
        else:
            buffer = io.StringIO()
            frame.write_csv(buffer, line_terminator="\r\n" if form == "csv-crlf" else "\n")
            text = buffer.getvalue()
            path.write_bytes(("\ufeff" if form == "csv-bom" else "").encode() + text.encode())
        return load_postings(path)


@SETTINGS
@given(frame=postings_tables(), form=st.sampled_from(["csv", "csv-crlf", "csv-bom", "parquet"]))
def test_loader_round_trips_what_a_writer_wrote(frame, form):
    """Whatever polars writes (any title text, with or without BOM and CRLF) reads back to the
    same rows in the same order: titles cut to MAX_TITLE_CHARS, hashes lower-cased."""
    loaded = _write_and_load(frame, form)
    assert loaded["posting_id"].to_list() == frame["posting_id"].to_list()
    expected_titles = [(t or "")[:MAX_TITLE_CHARS] for t in frame["title"].to_list()]
    assert loaded["title"].to_list() == expected_titles
    if "image_phash" in frame.columns:
        assert loaded["image_phash"].to_list() == [
            h.lower() if h else None for h in frame["image_phash"].to_list()]
    assert ("label_group" in loaded.columns) == ("label_group" in frame.columns)


@SETTINGS
@given(body=st.one_of(
    st.binary(max_size=300),
    st.text(alphabet='ab,"\n\r\x00\ufeff é', max_size=120).map(
        lambda t: ("posting_id,title,image_phash\n" + t).encode()),
    st.lists(st.tuples(st.text(alphabet="ab ,\"", max_size=4), titles,
                       st.text(alphabet="0123456789abcdefg", max_size=17)), max_size=6).map(
        lambda rows: ("posting_id,title,image_phash\n" + "".join(
            f"{a},{b},{c}\n" for a, b, c in rows)).encode("utf-8", "surrogatepass"))))
def test_loader_accepts_valid_or_raises_input_error(body):
    """Any bytes at all: the loader returns a table that meets the contract or raises
    InputError (which the command line reports in one line) — never another exception."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "p.csv"
        path.write_bytes(body)
        try:
            frame = load_postings(path)
        except InputError as exc:
            assert exc.file == str(path) and str(exc)
            return
    ids_ = frame["posting_id"]
    assert frame.height >= 1
    assert ids_.null_count() == 0 and ids_.is_unique().all()
    assert not ids_.str.contains(r"\s").any() and (ids_.str.len_chars() > 0).all()
    assert frame["title"].null_count() == 0
    assert (frame["title"].str.len_chars() <= MAX_TITLE_CHARS).all()
    if "image_phash" in frame.columns:
        hashes = frame["image_phash"].drop_nulls()
        assert hashes.str.contains(r"^[0-9a-f]{16}$").all()


# ----------------------------------------------------------------------------- metric

@st.composite
def predictions(draw):
    """Labels for n postings and predicted (query, match) pairs."""
    n = draw(st.integers(1, 20))
    labels = np.array(draw(st.lists(st.integers(0, 5), min_size=n, max_size=n)))
    _, labels = np.unique(labels, return_inverse=True)
    pairs = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=60))
    query = np.array([a for a, _ in pairs], dtype=np.int64)
    match = np.array([b for _, b in pairs], dtype=np.int64)
    return labels.astype(np.int64), query, match


def _true_pairs(labels):
    q, m = np.nonzero(labels[:, None] == labels[None, :])
    return q, m


@SETTINGS
@given(predictions())
def test_scores_are_bounded_and_f1_is_per_posting_harmonic(prediction):
    labels, q, m = prediction
    f1, precision, recall = per_posting_scores(q, m, labels)
    for values in (f1, precision, recall):
        assert ((values >= 0) & (values <= 1 + 1e-12)).all()
    harmonic = np.divide(2 * precision * recall, precision + recall,
                         out=np.zeros_like(f1), where=precision + recall > 0)
    np.testing.assert_allclose(f1, harmonic, atol=1e-12)


@SETTINGS
@given(predictions())
def test_true_sets_score_one_and_self_only_scores_the_group_formula(prediction):
    labels, _, _ = prediction
    score = score_pairs(*_true_pairs(labels), labels)
    assert (score.f1, score.precision, score.recall) == pytest.approx((1, 1, 1))
    sizes = np.bincount(labels)[labels]
    alone = score_pairs(np.empty(0, np.int64), np.empty(0, np.int64), labels)
    assert alone.f1 == pytest.approx(float(np.mean(2 / (1 + sizes))))
    assert alone.precision == pytest.approx(1.0)


@SETTINGS
@given(prediction=predictions(), data=st.data())
def test_invariant_to_renumbering_relabelling_and_repeats(prediction, data):
    labels, q, m = prediction
    n = len(labels)
    base = score_pairs(q, m, labels)
    order = np.array(data.draw(st.permutations(range(n))))  # posting k becomes order[k]
    renumbered = np.empty(n, np.int64)
    renumbered[order] = labels
    assert score_pairs(order[q], order[m], renumbered).f1 == pytest.approx(base.f1)
    renamed = (labels.max() - labels)  # label names carry no meaning
    assert score_pairs(q, m, renamed).f1 == pytest.approx(base.f1)
    assert score_pairs(np.r_[q, q], np.r_[m, m], labels).f1 == pytest.approx(base.f1)


@SETTINGS
@given(prediction=predictions(), data=st.data())
def test_adding_a_true_match_never_lowers_f1_and_a_false_one_never_raises_it(prediction, data):
    labels, q, m = prediction
    n = len(labels)
    a, b = data.draw(st.integers(0, n - 1)), data.draw(st.integers(0, n - 1))
    before = per_posting_scores(q, m, labels)
    after = per_posting_scores(np.r_[q, a], np.r_[m, b], labels)
    if labels[a] == labels[b]:
        assert after[0][a] >= before[0][a] - 1e-12 and after[2][a] >= before[2][a] - 1e-12
    else:
        assert after[0][a] <= before[0][a] + 1e-12 and after[1][a] <= before[1][a] + 1e-12
        assert after[2][a] == pytest.approx(before[2][a])
    others = np.arange(n) != a
    for x, y in zip(before, after):
        np.testing.assert_array_equal(x[others], y[others])


@SETTINGS
@given(predictions())
def test_submission_text_scores_like_the_pairs_it_lists(prediction):
    """A submission written from pairs (self included, any order, repeats) scores as the pairs."""
    labels, q, m = prediction
    n = len(labels)
    ids = [f"id{k}" for k in range(n)]
    listed: list[list[str]] = [[ids[k]] for k in range(n)]
    for a, b in zip(q.tolist(), m.tolist()):
        listed[a].append(ids[b])
    submission = pl.DataFrame({"posting_id": ids[::-1],
                               "matches": [" ".join(x) for x in listed][::-1]})
    postings = pl.DataFrame({"posting_id": ids, "title": [""] * n,
                             "label_group": [f"g{x}" for x in labels]})
    by_text = score_submission(postings, submission)
    by_pairs = score_pairs(q, m, labels)
    assert by_text.as_dict() == by_pairs.as_dict()
