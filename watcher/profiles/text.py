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

_NON_WORD = re.compile(r"[\W_]+")
_POSSESSIVE = re.compile(r"['’]s\b")
_COMBINING = re.compile(r"[\u0300-\u036f]+")
# ASCII fast path: bytes.translate maps every non-alphanumeric byte to a space in one C call.
_ASCII_SPACES = bytes(c if chr(c).isalnum() and c < 128 else 32 for c in range(256))


def fold(text: str) -> str:
    """Lower-case and strip accents (Erdoğan → erdogan) so spellings meet."""
    text = text.lower()
    if not text.isascii():
        # Typographic punctuation (most non-ASCII in news text) to ASCII first: str.replace is fast,
        # and most text then stays on the fast path.
        text = text.replace("’", "'").replace("‘", " ").replace("…", " ").replace("–", " ")
        text = text.replace("—", " ").replace("“", " ").replace("”", " ")
        if not text.isascii():
            text = _COMBINING.sub("", unicodedata.normalize("NFKD", text))
    return text


def normalize(text: str) -> str:
    """`` token token … `` — folded, possessives dropped, punctuation to spaces."""
    text = fold(text)
    if "'" in text:
        text = _POSSESSIVE.sub(" ", text) if "'s" in text else text
    if text.isascii():
        return " " + " ".join(text.encode().translate(_ASCII_SPACES).decode().split()) + " "
    return " " + " ".join(_NON_WORD.sub(" ", text).split()) + " "


def normalize_term(term: str) -> str:
    """A user's term in the same form as :func:`normalize`, without padding ('*' kept)."""
    star = term.strip().endswith("*")
    core = normalize(term.strip().rstrip("*")).strip()
    return core + "*" if star and core else core


def zipf(word: str) -> float:
    """How common a word or phrase is in general English (0 unknown … ~7.7 'the')."""
    from wordfreq import zipf_frequency  # only deriving needs it; keeps start-up of the service light

    return zipf_frequency(word, "en")


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
