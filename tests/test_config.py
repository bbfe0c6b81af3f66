import pytest

from releaserisk.config import Settings, load_settings
from releaserisk.errors import ConfigError


def test_defaults_without_any_file(tmp_path):
    assert load_settings(cwd=tmp_path, environ={}) == Settings()


def test_precedence_file_then_env_then_flags(tmp_path):
    (tmp_path / "releaserisk.toml").write_text('db = "file.duckdb"\nlabel_horizon_days = 90\nrisk_threshold = 0.4\n')
    env = {"RELEASERISK_DB": "env.duckdb", "RELEASERISK_PRODUCTION_ENVIRONMENTS": "prod, live"}
    settings = load_settings(cwd=tmp_path, environ=env, overrides={"risk_threshold": 0.7, "db": None})
    assert settings.db == "env.duckdb"
    assert settings.label_horizon_days == 90
    assert settings.production_environments == ("prod", "live")
    assert settings.risk_threshold == 0.7


@pytest.mark.parametrize("value", ['["staging", "production"]', "staging, production", ' ["staging","production"]'])
def test_list_settings_from_the_environment_as_commas_or_json(tmp_path, value):
    """A JSON list in an environment variable was split on its commas into '["staging"' and '"production"]'."""
    settings = load_settings(cwd=tmp_path, environ={"RELEASERISK_PRODUCTION_ENVIRONMENTS": value})
    assert settings.production_environments == ("staging", "production")


def test_pyproject_table_is_read_when_no_releaserisk_toml(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n[tool.releaserisk]\nszz_max_files = 7\n')
    assert load_settings(cwd=tmp_path, environ={}).szz_max_files == 7


def test_releaserisk_toml_wins_over_pyproject(tmp_path):
    (tmp_path / "pyproject.toml").write_text("[tool.releaserisk]\nszz_max_files = 7\n")
    (tmp_path / "releaserisk.toml").write_text("szz_max_files = 9\n")
    assert load_settings(cwd=tmp_path, environ={}).szz_max_files == 9


@pytest.mark.parametrize(
    ("toml", "env", "message"),
    [
        ("lable_horizon_days = 3\n", {}, "unknown setting 'lable_horizon_days'"),
        ("", {"RELEASERISK_COLOUR": "x"}, "unknown setting 'colour'"),
        ('label_horizon_days = "soon"\n', {}, "label_horizon_days"),
        ("risk_threshold = 2.0\n", {}, "risk_threshold"),
        ("production_environments = [1]\n", {}, "production_environments"),
        ("db = \n", {}, "not valid TOML"),
        ("", {"RELEASERISK_BUG_LABELS": '["bug", '}, "'bug_labels' from RELEASERISK_BUG_LABELS must be a list"),
        ("", {"RELEASERISK_BUG_LABELS": "[1, 2]"}, "bug_labels"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, toml, env, message):
    (tmp_path / "releaserisk.toml").write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load_settings(cwd=tmp_path, environ=env)


@pytest.mark.parametrize("reader", ["settings", "canary", "policy"])
def test_every_toml_file_is_read_by_one_reader_with_one_line_errors(tmp_path, reader):
    from releaserisk.canary.config import load_canary_config
    from releaserisk.config import load_settings
    from releaserisk.errors import ConfigError
    from releaserisk.gate import load_rollout_policy

    load = {"settings": load_settings, "canary": load_canary_config, "policy": load_rollout_policy}[reader]
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('name = "caf\xe9"\n'.encode("latin-1"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[low\n")
    for path, message in (
        (latin1, "not UTF-8"),
        (broken, "not valid TOML"),
        (tmp_path / "missing.toml", "cannot read"),
    ):
        with pytest.raises(ConfigError, match=message):
            load(str(path))
