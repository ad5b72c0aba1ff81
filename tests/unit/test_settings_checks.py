"""Settings checks that span sections: reconcile_after_s against the providers' timeouts."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from supervisor.config.settings import load_all
from supervisor.config.yamlconf import ConfigInvalid
from tests.helpers import ROOT

ENV = {"TWILIO_ACCOUNT_SID": "AC" + "0" * 32, "TWILIO_AUTH_TOKEN": "t"}


def config_with(tmp_path: Path, extra: str) -> Path:
    cfg = tmp_path / "config"
    shutil.copytree(ROOT / "config", cfg)
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    text = (cfg / "settings.yaml").read_text(encoding="utf-8")
    text = text.replace("notifiers:\n", "notifiers:\n" + extra, 1)
    (cfg / "settings.yaml").write_text(text, encoding="utf-8")
    return cfg


def test_reconcile_after_shorter_than_the_twilio_timeout_is_refused(tmp_path: Path):
    cfg = config_with(tmp_path, '  twilio: {from_number: "+8610000000000", timeout_s: 20}\n')
    text = (cfg / "settings.yaml").read_text(encoding="utf-8")
    text = text.replace("delivery:\n", "delivery:\n  reconcile_after_s: 15\n", 1)
    (cfg / "settings.yaml").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigInvalid) as info:
        load_all(cfg, env=ENV)
    [err] = [e for e in info.value.errors if e.key == "delivery.reconcile_after_s"]
    assert err.line is not None and err.file.endswith("settings.yaml")
    assert "not longer than notifiers.twilio.timeout_s (20 s)" in err.message


def test_the_default_reconcile_window_passes_with_twilio(tmp_path: Path):
    cfg = config_with(tmp_path, '  twilio: {from_number: "+8610000000000"}\n')
    assert load_all(cfg, env=ENV).settings.delivery.reconcile_after_s == 60
