from pathlib import Path

import pytest

from parcours.core.settings import SettingsError, load_settings


def test_a_bad_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARCOURS_PORT", "eighty")
    with pytest.raises(SettingsError, match="PARCOURS_PORT='eighty'"):
        load_settings()


def test_several_bad_values_are_all_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PARCOURS_TIMEZONE", "Mars/Olympus")
    monkeypatch.setenv("PARCOURS_DEFAULT_LOCALE", "de")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "PARCOURS_TIMEZONE" in str(caught.value)
    assert "unknown IANA time zone" in str(caught.value)
    assert "PARCOURS_DEFAULT_LOCALE" in str(caught.value)


def test_only_sqlite_and_postgresql_urls_are_accepted() -> None:
    with pytest.raises(SettingsError, match="PARCOURS_DATABASE_URL"):
        load_settings(database_url="mysql://x@y/z")


def test_values_come_from_a_dotenv_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PARCOURS_PORT=9123\nPARCOURS_DEFAULT_LOCALE=en\n")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.default_locale == "en"


def test_the_embedded_default_is_a_sqlite_file_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    assert settings.resolved_database_url == f"sqlite:///{tmp_path.resolve()}/parcours.db"
