"""Progress bars of the Hugging Face libraries are hidden inside the block only: a host's own
setting (on or off) is what it finds afterwards."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinsynth.runtime.quiet import quiet_progress_bars


@pytest.mark.parametrize("host_setting", [True, False])
def test_bars_off_inside_and_host_setting_restored(host_setting: bool) -> None:
    import datasets  # noqa: F401  (imported first, as quiet_progress_bars asks)
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as tf_logging

    for mod in (ds_logging, tf_logging):
        (mod.enable_progress_bar if host_setting else mod.disable_progress_bar)()
    try:
        with quiet_progress_bars():
            assert not tf_logging.is_progress_bar_enabled()
            assert not ds_logging.is_progress_bar_enabled()
            with quiet_progress_bars():  # nested: still off, and not switched on by the inner
                pass
            assert not tf_logging.is_progress_bar_enabled()
        assert tf_logging.is_progress_bar_enabled() is host_setting
        assert ds_logging.is_progress_bar_enabled() is host_setting
    finally:
        tf_logging.enable_progress_bar()
        ds_logging.enable_progress_bar()


def test_no_bar_is_printed_while_a_model_loads(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    from transformers import AutoModelForSequenceClassification

    from clinsynth.testing.tiny_bert import save_tiny_bert

    path = save_tiny_bert(tmp_path / "bert", ["a", "b"], hidden=16, layers=1)
    capfd.readouterr()
    AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    assert "Loading weights" in capfd.readouterr().err, "the bar this guards against"
    with quiet_progress_bars():
        AutoModelForSequenceClassification.from_pretrained(path, local_files_only=True)
    assert "Loading weights" not in capfd.readouterr().err
