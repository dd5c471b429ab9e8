"""Loading configs, models and tokenizers from local files, with one-line errors."""

from __future__ import annotations

import json

import pytest
import torch

from slam_align.errors import SlamError
from slam_align.models.loading import load_config, load_model, load_tokenizer, meta_model


def test_load_from_a_saved_tiny_model(tiny_llama_dir):
    config = load_config(str(tiny_llama_dir))
    assert config.model_type == "llama"
    assert load_config(str(tiny_llama_dir / "config.json")).to_dict() == config.to_dict()
    model = load_model(str(tiny_llama_dir), dtype="bf16")
    assert next(model.parameters()).dtype == torch.bfloat16
    meta = meta_model(config)
    assert next(meta.parameters()).device.type == "meta"
    assert [n for n, _ in meta.named_parameters()] == [n for n, _ in model.named_parameters()]
    tok = load_tokenizer(str(tiny_llama_dir))
    assert tok.pad_token is not None and len(tok("Janet has 16 eggs.")["input_ids"]) > 0


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"model_type": "llama",', "line 1: not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"hidden_size": 64}', "field 'model_type' is missing"),
        ('{"model_type": "no-such-arch"}', "model_type 'no-such-arch' is not known"),
    ],
)
def test_bad_config_files(tmp_path, content, message):
    path = tmp_path / "config.json"
    path.write_text(content)
    for spec in (path, tmp_path):
        with pytest.raises(SlamError, match=message) as info:
            load_config(str(spec))
        assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_paths_and_offline_hub(tmp_path, monkeypatch):
    with pytest.raises(SlamError, match="no config.json in this directory"):
        load_config(str(tmp_path))
    with pytest.raises(SlamError, match="no such file or directory"):
        load_config(str(tmp_path / "nothing" / "config.json"))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(SlamError, match="has no weights"):
        load_model(str(tmp_path / "config.json"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(SlamError, match="cannot load the config of 'nobody-xyz/none'") as info:
        load_config("nobody-xyz/none")
    assert "\n" not in str(info.value)
    with pytest.raises(SlamError, match="dtype: unknown value"):
        load_model(str(tmp_path), dtype="int3")
