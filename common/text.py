"""Title clean-up shared by the text embedders and the text features."""
from __future__ import annotations

import html

import polars as pl

# Shopee titles carry literal escape text such as "\xe2\x9d\xa4" (an emoji's UTF-8 bytes written
# out); it is noise for every text model.
_LITERAL_ESCAPES = r"(\\x[0-9a-fA-F]{2})+"


def clean_titles(titles: pl.Series) -> list[str]:
    """Lower-case, unescape HTML entities, drop literal byte escapes, squeeze whitespace."""
    cleaned = (titles.fill_null("")
               .str.replace_all(_LITERAL_ESCAPES, " ")
               .map_elements(html.unescape, return_dtype=pl.String)
               .str.to_lowercase()
               .str.replace_all(r"\s+", " ")
               .str.strip_chars())
    return cleaned.to_list()
