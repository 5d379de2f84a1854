"""The catalog's titles as the title-reading groups share them: cleaned once per table, and as a
binary posting × word matrix ('fuzzy' and 'tokens' read it; 'units' and 'identifiers' read the
cleaned titles)."""
from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from common.text import clean_titles

from .context import PairContext


def cleaned_titles(ctx: PairContext) -> np.ndarray:
    """The catalog's cleaned titles, shared by the chunks of the table."""
    return ctx.shared("titles", lambda: np.array(clean_titles(ctx.postings["title"]),
                                                 dtype=object))


def title_words(ctx: PairContext):
    """Binary posting × word matrix of the cleaned titles (None where no title has a word),
    shared by the chunks and by the groups that read words."""
    return ctx.shared("title_words", lambda: _word_matrix(cleaned_titles(ctx)))


def _word_matrix(titles: np.ndarray):
    words = CountVectorizer(binary=True, token_pattern=r"(?u)\b\w+\b", dtype=np.float32)
    try:
        return words.fit_transform(titles)
    except ValueError:  # no word in any title
        return None
