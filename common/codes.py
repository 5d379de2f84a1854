"""Model codes in titles: `CNSL3033`, `cnsl 3033` and `CNSL-3033` are one code, `cnsl3033`.

Electronics, appliances and parts are named by a model code more than by their words: two
televisions with the same words and sizes differ by `QE55Q8DNA` against `QE55Q7FNA`, and one
product is written `CNSL3033`, `cnsl 3033` or `CNSL-3033`, or loses a variant letter
(`QE55Q8DN`). A code here is a token of at least :data:`CODE_MIN` letters and digits mixed
(separators inside it folded: `sm-g950f` is `smg950f`), or a short letter word followed by a
number of three digits or more (`cnsl 3033`); a number followed by a short unit (`500ml`,
`1080p`) is a quantity, not a code. Extraction is regex work over all titles at once (polars).
The codes are both a candidate source (the `codes` embedder: postings sharing a code) and a
feature group (`identifiers`).
"""
from __future__ import annotations

import polars as pl

CODE_MIN = 4    # shortest code, in characters
PREFIX_MIN = 6  # a code at least this long matches a longer code that begins with it
_QUANTITY = r"^\d+(?:[.,]\d+)?[a-z]{1,4}$"  # 500ml, 2.5kg, 1080p, 64gb: a number and its unit


def folded(title: pl.Expr) -> pl.Expr:
    """Cleaned titles (lower case) with the separators inside codes removed (`sm-g950f/ds` is
    `smg950fds`) and a short word joined to a following number of ≥ 3 digits (`cnsl 3033` is
    `cnsl3033`)."""
    for _ in range(2):  # twice: "a-b-c" overlaps
        title = title.str.replace_all(r"([a-z0-9])[-/.]([a-z0-9])", "${1}${2}")
    return title.str.replace_all(r"\b([a-z]{2,5}) (\d{3,})\b", "${1}${2}")


def fold_codes(titles: list[str]) -> list[str]:
    """:func:`folded` over a list of cleaned titles."""
    return pl.Series("title", titles, dtype=pl.String).to_frame().select(
        folded(pl.col("title")))["title"].to_list()


def extract_codes(titles: list[str]) -> pl.DataFrame:
    """``row``, ``code``: each title's distinct codes (lower case, separators removed)."""
    frame = pl.DataFrame({"title": titles}, schema={"title": pl.String}).with_row_index("row")
    tokens = (frame.select(pl.col("row").cast(pl.Int64),
                           folded(pl.col("title")).str.extract_all(r"[a-z0-9]+").alias("code"))
              .explode("code").drop_nulls("code"))
    return (tokens.filter(pl.col("code").str.len_chars() >= CODE_MIN,
                          pl.col("code").str.contains(r"[a-z]"),
                          pl.col("code").str.contains(r"\d"),
                          ~pl.col("code").str.contains(_QUANTITY))
            .unique().sort("row", "code"))


def code_keys(codes: pl.DataFrame) -> pl.DataFrame:
    """``row``, ``code``: each row's codes (:func:`extract_codes`) and, of the codes in
    ``codes``, those of at least :data:`PREFIX_MIN` characters that begin one of the row's
    (`qe55q8dn` for `qe55q8dna`), so that two rows sharing a key share a code or one's code
    begins the other's."""
    known = codes.select(pl.col("code").unique())
    prefixes = (codes.filter(pl.col("code").str.len_chars() > PREFIX_MIN)
                .with_columns(pl.int_ranges(PREFIX_MIN, pl.col("code").str.len_chars())
                              .alias("length"))
                .explode("length")
                .select("row", pl.col("code").str.slice(0, pl.col("length")))
                .join(known, on="code", how="semi"))
    return pl.concat([codes.select("row", "code"), prefixes]).unique().sort("row", "code")
