"""Run config, settings and config files: defaults and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinsynth.config import ConfigError, RunConfig, Settings, load_config_file


def test_candidate_limit_defaults_to_four_times_n() -> None:
    assert RunConfig(n=5).candidate_limit == 20
    assert RunConfig(n=5, max_candidates=7).candidate_limit == 7


def test_fingerprint_ignores_volume_settings() -> None:
    a = RunConfig(n=5, max_concurrency=1)
    b = RunConfig(n=50, max_concurrency=8, token_budget=10)
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != RunConfig(n=5, seed=1).fingerprint()


def test_settings_pick_local_without_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINSYNTH_BASE_URL", raising=False)
    assert Settings().resolved_provider() == "local"
    monkeypatch.setenv("CLINSYNTH_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("CLINSYNTH_GENERATOR_MODEL", "big")
    settings = Settings()
    assert settings.resolved_provider() == "openai"
    endpoints = settings.endpoints()
    assert endpoints["generator"].model == "big"
    assert endpoints["reasoner"].base_url == "http://127.0.0.1:9/v1"


def test_openai_provider_without_url_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLINSYNTH_BASE_URL", raising=False)
    monkeypatch.delenv("CLINSYNTH_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="CLINSYNTH_BASE_URL"):
        Settings(provider="openai").endpoints()


def test_config_file_toml(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(
        'recipe = "qa"\nn = 3\n[recipe_options]\nmax_overlap = 0.3\n'
        '[endpoints.generator]\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "g"\n'
    )
    cfg = load_config_file(path)
    assert cfg.run["n"] == 3
    assert cfg.endpoints["generator"].model == "g"


@pytest.mark.parametrize(
    ("content", "suffix", "message"),
    [
        ("n = 0\n", ".toml", "bad config.*n"),
        ("n = [\n", ".toml", "cannot parse"),
        ('{"bogus": 1}', ".json", "bogus"),
        ("[endpoints.judge]\nmodel='x'\n", ".toml", "unknown endpoint role"),
        ("n: 3", ".yaml", "must be .toml or .json"),
    ],
)
def test_bad_config_files(tmp_path: Path, content: str, suffix: str, message: str) -> None:
    path = tmp_path / f"run{suffix}"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        load_config_file(path)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config_file(tmp_path / "nope.toml")


def test_latin1_config_file_says_save_as_utf8(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_bytes('[run]\ntopic = "café"\n'.encode("latin-1"))
    with pytest.raises(ConfigError) as err:
        load_config_file(path)
    assert str(err.value) == (
        f"{path}:2: not UTF-8 text (invalid continuation byte); save it as UTF-8"
    )
