import pytest
from pydantic import ValidationError

from core.database import libpq_url, sqlalchemy_url
from geoservice.settings import Settings


def test_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("DATABASE_URL", "GEOSERVICE_DATABASE_URL", "GEOSERVICE_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url is None
    assert settings.storage_srid == 25833
    assert settings.data_dir.name == ".geoservice"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)


def test_env_prefix_and_plain_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db:5432/gis")
    monkeypatch.setenv("GEOSERVICE_STORAGE_SRID", "25832")
    settings = Settings(_env_file=None)
    assert settings.database_url == "postgresql://u:p@db:5432/gis"
    assert settings.storage_srid == 25832
    monkeypatch.setenv("GEOSERVICE_DATABASE_URL", "postgresql://other@db/x")
    assert Settings(_env_file=None).database_url == "postgresql://other@db/x"


def test_rejects_non_postgres_url() -> None:
    with pytest.raises(ValidationError, match="postgresql://user:password@host"):
        Settings(database_url="sqlite:///x.db", _env_file=None)


def test_url_forms_round_trip() -> None:
    url = "postgresql://u:p%40ss@h:5/db"
    assert sqlalchemy_url(url) == "postgresql+psycopg://u:p%40ss@h:5/db"
    assert libpq_url(sqlalchemy_url(url)) == url
