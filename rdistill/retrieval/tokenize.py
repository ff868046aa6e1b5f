"""BM25's tokeniser, stated in full and recorded in every index: lowercase, a word regex, stopwords, a stemmer.

The default is the usual English setup (bm25s's and sklearn's): lowercase; tokens are runs of two or more word
characters (``(?u)\\b\\w\\w+\\b``); bm25s's English stopword list removed (Lucene's 33 words, as pyserini
uses); PyStemmer's Snowball English stemmer.
Query and documents go through the same :class:`Tokenizer`, and an index refuses queries tokenised differently.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from rdistill.errors import UsageError

DEFAULT_PATTERN = r"(?u)\b\w\w+\b"
# The same matches as DEFAULT_PATTERN under findall, about 15% faster: a run of 2+ word characters is always
# matched from its first character and to its last (greedy), so both word boundaries hold by construction.
FAST_DEFAULT = r"\w\w+"
CACHE_LIMIT = 200_000  # distinct words remembered (about 30 MB); the cache is emptied when it reaches this
STOPWORD_LISTS = ("en", "none")
# Lucene's English stop set (EnglishAnalyzer's 33 words), the list bm25s calls STOPWORDS_EN and pyserini uses;
# spelled out here because importing it from bm25s imports numba and scipy (~0.2 s of every retrieve's start-up).
# A test checks it against bm25s's.
ENGLISH_STOPWORDS = frozenset((
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it", "no", "not", "of",
    "on", "or", "such", "that", "the", "their", "then", "there", "these", "they", "this", "to", "was", "will",
    "with"))


def stemmer_names() -> list[str]:
    """Stemmers PyStemmer offers (Snowball's languages plus 'porter'), and 'none'."""
    import Stemmer  # type: ignore[import-not-found]

    return [*Stemmer.algorithms(), "none"]


@dataclass(frozen=True)
class TokenizerSettings:
    """Everything that decides a token; stored in the index metadata and compared on reuse."""

    lowercase: bool = True
    pattern: str = DEFAULT_PATTERN
    stopwords: str = "en"
    stemmer: str = "english"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Tokenizer:
    """Text -> list of tokens. Each distinct word's token (its stem, or None for a stopword) is cached, so a
    document costs one regex pass and one dict lookup per word, all in C (indexing is bound by this loop)."""

    def __init__(self, settings: TokenizerSettings | None = None) -> None:
        self.settings = settings or TokenizerSettings()
        s = self.settings
        try:
            self.regex = re.compile(FAST_DEFAULT if s.pattern == DEFAULT_PATTERN else s.pattern)
        except re.error as exc:
            raise UsageError(f"token pattern {s.pattern!r}: {exc}") from None
        if s.stopwords == "en":
            self.stopwords: frozenset[str] = ENGLISH_STOPWORDS
        elif s.stopwords == "none":
            self.stopwords = frozenset()
        else:
            raise UsageError(f"--stopwords {s.stopwords!r}: expected one of {', '.join(STOPWORD_LISTS)}")
        self.stem = None
        if s.stemmer != "none":
            import Stemmer

            if s.stemmer not in Stemmer.algorithms():
                raise UsageError(f"--stemmer {s.stemmer!r}: expected one of {', '.join(stemmer_names())}")
            self.stem = Stemmer.Stemmer(s.stemmer, 0).stemWords  # cached here instead
        self.cache: dict[str, str | None] = {}

    def __call__(self, text: str) -> list[str]:
        if self.settings.lowercase:
            text = text.lower()
        words = self.regex.findall(text)
        if self.stem is None and not self.stopwords:
            return words
        try:
            tokens = list(map(self.cache.__getitem__, words))
        except KeyError:
            self._learn(words)
            tokens = list(map(self.cache.__getitem__, words))
        return [t for t in tokens if t is not None]

    def _learn(self, words: list[str]) -> None:
        """Cache the tokens of the words not seen yet: stopwords (matched before stemming, on the lowercased
        surface form, as bm25s does) map to None, other words to their stem."""
        if len(self.cache) + len(words) > CACHE_LIMIT:
            self.cache = {}
        new = [w for w in dict.fromkeys(words) if w not in self.cache]
        kept = [w for w in new if w not in self.stopwords]
        tokens = self.stem(kept) if self.stem is not None and kept else kept
        self.cache.update(dict.fromkeys(w for w in new if w in self.stopwords))
        self.cache.update(zip(kept, tokens, strict=True))
