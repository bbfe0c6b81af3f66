"""The profile table: complete, sourced, the only place profiles differ, and the README's copy of it."""

import re
from pathlib import Path

import pytest

from releaserisk.errors import InputError
from releaserisk.profiles import PROFILE_RULES, PROFILES, profile_rules, profile_table, profile_table_markdown

ROOT = Path(__file__).resolve().parents[1]


def test_every_choice_has_a_source_and_every_rule_a_name():
    table = profile_table()
    assert table["rule"].is_unique and len(table) == len(PROFILE_RULES)
    for profile in PROFILES:
        assert table[profile].str.len().gt(0).all() and table[f"{profile}_source"].str.len().gt(0).all()


def test_the_analysis_reads_rules_never_a_profile_name():
    source = (ROOT / "releaserisk" / "dora.py").read_text()
    assert not re.search(r"profile\s*[!=]=", source)
    for rule in PROFILE_RULES:
        assert f'rules["{rule.name}"]' in source, f"rule {rule.name} is never read"


def test_unknown_profile_is_an_input_error():
    with pytest.raises(InputError, match="profile must be one of"):
        profile_rules("sleuth")
    assert profile_rules("devlake")["first_of_chain"] == "none"


def test_the_readme_table_is_the_profile_table():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- profile-table:start -->\n", 1)[1].split("\n<!-- profile-table:end -->", 1)[0]
    assert table == profile_table_markdown(), "regenerate the README table from profiles.profile_table_markdown()"
