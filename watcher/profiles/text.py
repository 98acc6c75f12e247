"""Text normalization shared by derivation and scoring.

Scoring must be fast (tens of thousands of items a second), so an item is
normalized with a handful of C-level string operations into one string of
lower-case tokens separated by single spaces and padded with a space at both
ends. Terms are normalized the same way, so a term matches whole tokens when
searched as ``" term "`` in that string.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from pathlib import Path

_NON_WORD = re.compile(r"[\W_]+")
_POSSESSIVE = re.compile(r"['’]s\b")
_CASED_POSSESSIVE = re.compile(r"'[sS]\b")  # the same on ASCII text not yet lower-cased
_COMBINING = re.compile(r"[\u0300-\u036f]+")
# ASCII fast path: bytes.translate maps every non-alphanumeric byte to a space in one C call.
_ASCII_SPACES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))
_ASCII_LOWER_SPACES = _ASCII_SPACES.lower()  # the same, lower-casing ASCII letters on the way


def fold(text: str) -> str:
    """Lower-case and strip accents (Erdoğan → erdogan) so spellings meet."""
    text = text.lower()
    if not text.isascii():
        # Typographic punctuation (most non-ASCII in news text) to ASCII first: str.replace is fast,
        # and most text then stays on the fast path.
        text = plain_punctuation(text)
        if not text.isascii():
            text = _strip_accents(text)
    return text


def _strip_accents(text: str) -> str:
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text))


def plain_punctuation(text: str) -> str:
    """Typographic quotes, dashes and ellipses as ASCII (none of them has a case)."""
    text = text.replace("’", "'").replace("‘", " ").replace("…", " ").replace("–", " ")
    return text.replace("—", " ").replace("“", " ").replace("”", " ")


def normalize(text: str) -> str:
    """`` token token … `` — folded, possessives dropped, punctuation to spaces."""
    if not text.isascii():
        # `fold`'s punctuation step first (punctuation has no case, so before or after lower-casing
        # is the same): text whose only non-ASCII was typographic punctuation takes the ASCII path.
        text = plain_punctuation(text)
    if text.isascii():  # folding is lower-casing, which the byte table does
        if "'s" in text or "'S" in text:
            text = _CASED_POSSESSIVE.sub(" ", text)
        return _ascii_tokens(text)
    text = _strip_accents(text.lower())  # the rest of `fold` (its punctuation step is done)
    if "'" in text:
        text = _POSSESSIVE.sub(" ", text) if "'s" in text else text
    if text.isascii():  # (not lower-cased again: NFKD can leave capitals, "™" to "TM")
        return (b" " + b" ".join(text.encode().translate(_ASCII_SPACES).split()) + b" ").decode()
    return " " + " ".join(_NON_WORD.sub(" ", text).split()) + " "


def _ascii_tokens(text: str) -> str:
    """ASCII text's words, lower-cased, each between single spaces: a few C calls on its bytes."""
    return (b" " + b" ".join(text.encode().translate(_ASCII_LOWER_SPACES).split()) + b" ").decode()


def ascii_spaced(text: str) -> str:
    """ASCII text lower-cased with every byte but a letter or digit a space, and a space at both ends.

    Each word of `normalize` of the same text is in it between spaces (one or more: nothing is
    collapsed, and the s of a possessive stays a word), for a cheap first look at ASCII text.
    """
    return f" {text} ".encode().translate(_ASCII_LOWER_SPACES).decode()


def normalize_term(term: str) -> str:
    """A user's term in the same form as :func:`normalize`, without padding ('*' kept)."""
    star = term.strip().endswith("*")
    core = normalize(term.strip().rstrip("*")).strip()
    return core + "*" if star and core else core


def zipf(word: str) -> float:
    """How common a word or phrase is in general English (0 unknown … ~7.7 'the')."""
    from wordfreq import zipf_frequency  # only deriving needs it; keeps start-up of the service light

    return zipf_frequency(word, "en")


# The English words wordfreq rates at zipf >= 3.0, with their zipf, generated from wordfreq by
# scripts/build_word_data.py and shipped: scoring asks "is this word common?" for capitalised
# words, and importing wordfreq for that would cost every scoring process ~0.4 s and ~45 MB.
COMMON_WORDS_FILE = Path(__file__).with_name("common_words.txt")
COMMON_FLOOR = 3.0


@lru_cache(maxsize=1)
def _common_words() -> dict[str, float] | None:
    """The shipped table, read once; None (also remembered) when the file cannot be read."""
    try:
        text = COMMON_WORDS_FILE.read_text(encoding="utf-8")
    except OSError:
        return None
    table: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            word, value = line.rsplit(" ", 1)
            table[word] = float(value)
    return table


def zipf_at_least(word: str, level: float) -> bool:
    """``zipf(word) >= level`` for a level of at least 3.0, from the shipped table for plain words."""
    table = _common_words() if level >= COMMON_FLOOR and word.isalpha() else None
    if table is None:
        return zipf(word) >= level  # digits, a phrase, a low level or no table: ask wordfreq itself
    return table.get(word, 0.0) >= level


def write_common_words(path: Path = COMMON_WORDS_FILE) -> int:
    """Write every word wordfreq rates at zipf >= COMMON_FLOOR, most common first."""
    from importlib.metadata import version

    from wordfreq import iter_wordlist, zipf_frequency

    lines = [
        f"# English words at zipf >= {COMMON_FLOOR} with their zipf, from wordfreq {version('wordfreq')}.",
        "# Generated by scripts/build_word_data.py; do not edit.",
    ]
    for word in iter_wordlist("en"):
        value = zipf_frequency(word, "en")
        if value < COMMON_FLOOR:
            break  # the list is in order of frequency
        if " " not in word:
            lines.append(f"{word} {value:g}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(lines) - 2


def singular(word: str) -> str:
    """A light singular: 'militias' → 'militia', 'parties' → 'party'.

    Only applied when the singular is itself a known English word, so names
    ending in s (Kubis, Tunis) are left alone.
    """
    if len(word) < 4 or not word.endswith("s") or word.endswith("ss"):
        return word
    candidates = []
    if word.endswith("ies"):
        candidates.append(word[:-3] + "y")
    if word.endswith(("ches", "shes", "xes", "sses")):
        candidates.append(word[:-2])
    candidates.append(word[:-1])
    floor = max(2.0, zipf(word) - 0.8)  # 'this' is not the plural of 'thi'
    for cand in candidates:
        if zipf(cand) >= floor:
            return cand
    return word


def inflections(term: str) -> list[str]:
    """Surface forms a term matches: its last word in singular and plural."""
    words = term.split()
    last = words[-1]
    forms = {last}
    if last.endswith("y") and len(last) > 2 and last[-2] not in "aeiou":
        forms.add(last[:-1] + "ies")
    elif last.endswith(("s", "x", "ch", "sh")):
        forms.add(last + "es")
    else:
        forms.add(last + "s")
    head = " ".join(words[:-1])
    return sorted(f"{head} {f}".strip() for f in forms)
