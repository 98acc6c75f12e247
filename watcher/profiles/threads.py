"""News threads: which kind of news the seeds are, and which other kinds a place is also in.

News about any country runs in a few recurring threads: its conflicts, its
politics, migration at sea, disasters and accidents, health, sport, courts,
culture, markets. The words below are generic English for each thread, not
knowledge of any story. Derivation counts how many words of each thread the
seeds use: a thread the seeds are written in (three distinct words or more)
lifts an item a little (``STORY_WEIGHT`` per word); a thread the seeds never
touch lowers it (``OTHER_WEIGHT``), so that an item on the topic that follows
another thread still matches but ranks below the story's own news. The words
land in the profile's ``terms`` with their weights, where the user can edit
or delete them; ``profile explain`` shows them with origin ``generic``.
"""

from __future__ import annotations

from collections.abc import Iterable

STORY_WEIGHT = 0.3
OTHER_WEIGHT = -1.0
MIN_WORDS = 3  # distinct words of a thread the seeds must use for it to be theirs

THREADS: dict[str, tuple[str, ...]] = {
    "conflict": tuple(
        """
        war conflict battle clash fighting fighter militia militant rebel insurgent gunman gunmen
        troops armed army military airstrike bombing bomb shelling artillery offensive ambush
        ceasefire truce hostilities violence violent terrorist terrorism coup siege
        """.split()  # noqa: SIM905
    ),
    "politics": tuple(
        """
        election parliament parliamentary government cabinet minister president presidential
        opposition coalition constitution referendum vote sanctions embargo diplomat diplomatic
        envoy talks negotiation summit conference treaty agreement
        """.split()  # noqa: SIM905
    ),
    "migration": tuple(
        "migrant asylum boat dinghy shipwreck* capsiz* drown* smuggler rescued rescues".split()  # noqa: SIM905
    ),
    "disaster": tuple(
        "earthquake flood flooding hurricane cyclone wildfire drought crash crashed derailed".split()  # noqa: SIM905
    ),
    "health": tuple("covid coronavirus pandemic virus vaccin* outbreak cholera epidemic quarantine".split()),  # noqa: SIM905
    "sport": tuple("football soccer olympic* championship tournament athlete".split()),  # noqa: SIM905
    "courts": tuple(
        "trial sentenced convicted verdict lawsuit extradit* acquitted embezzlement bribery".split()  # noqa: SIM905
    ),
    "culture": tuple("heritage unesco museum festival film".split()),  # noqa: SIM905
    "markets": tuple("price stock shares".split()),  # noqa: SIM905
}


def _uses(word: str, seed_words: set[str]) -> bool:
    if word.endswith("*"):
        return any(w.startswith(word[:-1]) for w in seed_words)
    return word in seed_words or word + "s" in seed_words or word + "es" in seed_words


def thread_terms(seed_words: Iterable[str]) -> tuple[dict[str, float], list[str]]:
    """({word: weight}, the seeds' own threads) for the words of every thread.

    Another thread's words the seeds use anyway are left out: the seeds say they belong.
    """
    words = set(seed_words)
    own = [name for name, vocab in THREADS.items() if sum(_uses(w, words) for w in vocab) >= MIN_WORDS]
    out: dict[str, float] = {}
    for name, vocab in THREADS.items():
        for word in vocab:
            if name in own:
                out[word] = STORY_WEIGHT
            elif not _uses(word, words):
                out[word] = OTHER_WEIGHT
    return out, own
