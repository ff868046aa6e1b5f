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
STOPWORD_LISTS = ("en", "none")


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
    """Text -> list of tokens. Stems are cached per distinct word (PyStemmer's own cache), never per document."""

    def __init__(self, settings: TokenizerSettings | None = None) -> None:
        self.settings = settings or TokenizerSettings()
        s = self.settings
        try:
            self.regex = re.compile(s.pattern)
        except re.error as exc:
            raise UsageError(f"token pattern {s.pattern!r}: {exc}") from None
        if s.stopwords == "en":
            from bm25s.stopwords import STOPWORDS_EN

            self.stopwords: frozenset[str] = frozenset(STOPWORDS_EN)
        elif s.stopwords == "none":
            self.stopwords = frozenset()
        else:
            raise UsageError(f"--stopwords {s.stopwords!r}: expected one of {', '.join(STOPWORD_LISTS)}")
        self.stem = None
        if s.stemmer != "none":
            import Stemmer

            if s.stemmer not in Stemmer.algorithms():
                raise UsageError(f"--stemmer {s.stemmer!r}: expected one of {', '.join(stemmer_names())}")
            self.stem = Stemmer.Stemmer(s.stemmer, 100_000).stemWords

    def __call__(self, text: str) -> list[str]:
        if self.settings.lowercase:
            text = text.lower()
        words = self.regex.findall(text)
        if self.stopwords:
            # Stopwords are matched before stemming, on the lowercased surface form (as bm25s does).
            words = [w for w in words if w not in self.stopwords]
        return self.stem(words) if self.stem is not None and words else words
