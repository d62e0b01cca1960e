"""``generate``'s options: one model for the command line and the run, mapped in one place."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from clinsynth.commands.generate import generate
from clinsynth.config import ConfigError, FileConfig, RunConfig, Settings
from clinsynth.generate_options import GenerateOptions, flag_of, resolve


def env(store: Path | None, embedder: str | None) -> Settings:
    return Settings(base_url="http://127.0.0.1:9/v1", store=store or Path("s"))


def test_every_run_option_names_a_run_config_field() -> None:
    targets = [flag_of(name).run for name in GenerateOptions.model_fields]
    mapped = [t for t in targets if t is not None]
    assert len(mapped) == 19
    assert len(set(mapped)) == len(mapped)
    assert set(mapped) <= set(RunConfig.model_fields)


def test_the_command_takes_exactly_the_model_fields() -> None:
    params = inspect.signature(generate).parameters
    assert list(params) == list(GenerateOptions.model_fields)
    app = typer.Typer()
    app.command()(generate)
    app.command("other")(lambda: None)
    help_text = CliRunner().invoke(app, ["generate", "--help"], terminal_width=200).output
    for flag in ("--recipe", "-r", "-n", "--out", "-o", "--price-in", "--option", "--no-progress"):
        assert flag in help_text


def test_options_override_the_file_and_the_file_overrides_defaults() -> None:
    file_cfg = FileConfig.model_validate(
        {"recipe": "notes", "n": 7, "max_concurrency": 2, "recipe_options": {"a": 1}, "seed": 3}
    )
    options = GenerateOptions(concurrency=5, option=["b=[1, 2]", "c=text"], temperature=0.5)
    resolved = resolve(options, file_cfg, env)
    run = resolved.run
    # --recipe left at its default "qa" does not override the file's recipe
    assert (run.recipe, run.n, run.max_concurrency, run.seed) == ("notes", 7, 5, 3)
    assert run.temperature == 0.5
    assert run.recipe_options == {"a": 1, "b": [1, 2], "c": "text"}
    assert resolved.out_dir == Path("runs/notes-3")
    assert resolve(GenerateOptions(recipe="trials"), file_cfg, env).run.recipe == "trials"


def test_quotas_and_renamed_options_land_on_their_run_fields(tmp_path: Path) -> None:
    options = GenerateOptions(
        quota=["a=2", "b=3"],
        price_in=1.0,
        price_out=2.0,
        cost_budget=0.5,
        wall_time=9.0,
        out_dir=tmp_path,
        store=tmp_path / "store",
    )
    resolved = resolve(options, None, env)
    run = resolved.run
    assert (run.n, run.quotas) == (5, {"a": 2, "b": 3})
    assert (run.price_per_1k_input, run.price_per_1k_output, run.cost_budget) == (1.0, 2.0, 0.5)
    assert run.wall_time_s == 9.0
    assert resolved.out_dir == tmp_path
    assert resolved.settings.store == tmp_path / "store"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (GenerateOptions(option=["novalue"]), "--option expects key=value, got 'novalue'"),
        (GenerateOptions(quota=["a=x"]), "--quota expects KEY=N with a whole number N"),
        (GenerateOptions(provider="azure"), "unknown provider 'azure' (use openai or local)"),
        (GenerateOptions(gguf=Path("/nonexistent.gguf")), "GGUF file not found"),
    ],
)
def test_bad_options_are_one_line_config_errors(options: GenerateOptions, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        resolve(options, None, env)
    assert str(info.value).startswith(message)


def test_file_endpoints_override_the_environment_per_role() -> None:
    file_cfg = FileConfig.model_validate(
        {"endpoints": {"default": {"model": "d"}, "critic": {"model": "c"}}}
    )
    endpoints = resolve(GenerateOptions(model="env-model"), file_cfg, env).endpoints
    assert {role: ep.model for role, ep in endpoints.items()} == {
        "reasoner": "d",
        "generator": "d",
        "critic": "c",
    }
    plain = resolve(GenerateOptions(model="env-model"), None, env).endpoints
    assert {ep.model for ep in plain.values()} == {"env-model"}
