"""Group 'units': quantities with units in titles, normalised, compared per pair.

"Serum 30 ml" and "Serum 100 ml" share every word but one number: the quantity decides that they
are different products. Titles are Indonesian and English, so units come in both spellings
("gr", "gram", "lembar", "biji", "liter"), and numbers use either separator ("1.000 ml",
"4,5 m"). Extraction is regex work over all titles at once (polars), never a loop over postings;
comparison is sparse dot products over (family, value) tokens, never a loop over pairs.
"""
from __future__ import annotations

import numpy as np
import polars as pl

from candidates import pair_similarity
from common.tokens import token_matrix

from .context import PairContext
from .titles import cleaned_titles

_NUMBER = r"\d+(?:[.,]\d+)*"

# family → (unit spellings → factor to the family's base unit). Longer spellings first, so the
# regex alternation prefers "kg" over "g" and "mah" over "m".
UNIT_FAMILIES: dict[str, dict[str, float]] = {
    "weight": {"kilogram": 1000, "kilo": 1000, "kg": 1000, "grams": 1, "gram": 1, "gr": 1,
               "gm": 1, "g": 1, "mg": 0.001, "ons": 100},
    "volume": {"liter": 1000, "litre": 1000, "ltr": 1000, "lt": 1000, "l": 1000, "ml": 1,
               "cc": 1},
    # Not "in": "3 in 1" is a product type, not 3 inches. '"' is rewritten to "inch" first.
    "length": {"meter": 1000, "metre": 1000, "mm": 1, "cm": 10, "m": 1000, "inch": 25.4,
               "inchi": 25.4},
    "pieces": {"pieces": 1, "piece": 1, "pcs": 1, "pc": 1, "lembar": 1, "lbr": 1, "biji": 1,
               "pack": 1, "pak": 1, "sachet": 1, "buah": 1},
    "memory": {"tb": 1024 * 1024, "gb": 1024, "mb": 1},
    "power": {"watt": 1, "w": 1},
    "capacity": {"mah": 1},
}
FAMILIES = [*UNIT_FAMILIES, "size"]
# Clothing sizes as an ordinal; numeric sizes ("size 38") keep their number (offset past them).
_LETTER_SIZES = {"xxs": 1, "xs": 2, "s": 3, "m": 4, "l": 5, "xl": 6, "xxl": 7, "2xl": 7,
                 "xxxl": 8, "3xl": 8, "4xl": 9, "5xl": 10}


def _alternation(spellings) -> str:
    return "|".join(sorted(spellings, key=len, reverse=True))


def _family_pattern(units: dict[str, float]) -> str:
    # The unit must end its word: "100ml" and "100 ml", not the "l" of "100 lembar".
    return rf"({_NUMBER})\s?({_alternation(units)})\b"


# A number after "ukuran" with a decimal part ("ukuran 1,25 inch") is a measure, not a size: it is
# matched whole here and dropped below.
_SIZE_PATTERN = (rf"\b(?:size|ukuran|uk)\s?[:.]?\s?"
                 rf"({_alternation(_LETTER_SIZES)}|\d{{1,2}}(?:[.,]\d+)?)\b"
                 rf"|\b({_alternation(k for k in _LETTER_SIZES if len(k) > 1)})\b")
_ISI_PATTERN = rf"\bisi\s?({_NUMBER})\b"  # "isi 12": a pack of 12 pieces


def parse_number(text: pl.Expr) -> pl.Expr:
    """'1.000' and '10,000' are thousands (a separator before exactly three digits); '4,5' and
    '1.5' are decimals."""
    thousands = text.str.contains(r"^\d{1,3}(?:[.,]\d{3})+$")
    return (pl.when(thousands).then(text.str.replace_all(r"[.,]", ""))
            .otherwise(text.str.replace(",", ".", literal=True))
            .cast(pl.Float64, strict=False))


def extract_quantities(titles: list[str]) -> pl.DataFrame:
    """Rows (row, family, value) for every quantity found; values in base units (g, ml, mm,
    pieces, MB, W, mAh; clothing sizes as an ordinal, numeric sizes as themselves + 100)."""
    frame = (pl.DataFrame({"title": titles}).with_row_index("row")
             .with_columns(pl.col("title").str.replace_all(r"(\d)\s?\"", "$1 inch ")))
    parts = []
    for family, units in UNIT_FAMILIES.items():
        found = (frame.select("row", pl.col("title").str.extract_all(_family_pattern(units))
                              .alias("match"))
                 .explode("match").drop_nulls("match")
                 .with_columns(pl.col("match").str.extract(rf"({_NUMBER})", 1).alias("number"),
                               pl.col("match").str.extract(rf"({_alternation(units)})$", 1)
                               .alias("unit")))
        factor = pl.col("unit").replace_strict({u: float(f) for u, f in units.items()}, default=None,
                                                 return_dtype=pl.Float64)
        parts.append(found.select("row", pl.lit(family).alias("family"),
                                  (parse_number(pl.col("number")) * factor).alias("value")))
    isi = (frame.select("row", pl.col("title").str.extract_all(_ISI_PATTERN).alias("match"))
           .explode("match").drop_nulls("match"))
    parts.append(isi.select("row", pl.lit("pieces").alias("family"),
                            parse_number(pl.col("match").str.extract(rf"({_NUMBER})", 1))
                            .alias("value")))
    sizes = (frame.select("row", pl.col("title").str.extract_all(_SIZE_PATTERN).alias("match"))
             .explode("match").drop_nulls("match")
             .with_columns(pl.col("match").str.extract(r"([\w.,]+)$", 1).alias("size")))
    size_value = (pl.when(pl.col("size").str.contains(r"^\d+$"))
                  .then(pl.col("size").cast(pl.Float64, strict=False) + 100)
                  .otherwise(pl.col("size").replace_strict({k: float(v) for k, v in _LETTER_SIZES.items()}, default=None,
                                                           return_dtype=pl.Float64)))
    parts.append(sizes.select("row", pl.lit("size").alias("family"), size_value.alias("value")))
    return (pl.concat(parts).drop_nulls("value").filter(pl.col("value") > 0)
            .with_columns(pl.col("value").round(3), pl.col("row").cast(pl.Int64))
            .unique().sort(["row", "family", "value"]))


def _numbers(titles: list[str]) -> pl.DataFrame:
    return (pl.DataFrame({"title": titles}).with_row_index("row")
            .select(pl.col("row").cast(pl.Int64), pl.col("title").str.extract_all(r"\d+(?:[.,]\d+)*")
                    .alias("number"))
            .explode("number").drop_nulls("number").unique())


def unit_features(ctx: PairContext) -> dict[str, np.ndarray]:
    i, j = ctx.i, ctx.j
    families, numbers = ctx.shared("unit_matrices",
                                   lambda: _unit_matrices(cleaned_titles(ctx).tolist(), ctx.n))
    out: dict[str, np.ndarray] = {}
    shared = np.zeros(len(i), np.float32)
    conflicts = np.zeros(len(i), np.float32)
    for family, (matrix, has) in families.items():
        both = has[i] & has[j]
        common = ctx.symmetric(lambda a, b, m=matrix: pair_similarity(m, a, b))
        conflict = both & (common == 0)
        out[f"units_{family}_conflict"] = np.where(both, conflict, np.nan).astype(np.float32)
        shared += both
        conflicts += conflict
    out["units_shared_families"] = shared
    out["units_conflicts"] = conflicts
    matrix, counts = numbers
    common = ctx.symmetric(lambda a, b: pair_similarity(matrix, a, b))
    out["numbers_only_i"] = counts[i] - common
    out["numbers_only_j"] = counts[j] - common
    out["numbers_common"] = common
    return out


def _unit_matrices(titles: list[str], n: int):
    """Per unit family, the posting × quantity matrix and which postings state one; and the
    posting × number matrix with each posting's count of numbers (``titles``: cleaned)."""
    quantities = extract_quantities(titles)
    families = {}
    for family in FAMILIES:
        part = quantities.filter(pl.col("family") == family)
        matrix = token_matrix(part["row"].to_numpy(), part["value"].cast(pl.String), n)
        families[family] = matrix, np.diff(matrix.indptr) > 0
    numbers = _numbers(titles)
    matrix = token_matrix(numbers["row"].to_numpy(), numbers["number"], n)
    return families, (matrix, np.diff(matrix.indptr).astype(np.float32))
