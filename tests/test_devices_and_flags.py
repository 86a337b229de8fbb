"""Device and dtype choice (``lslo.devices``), settings as flags (``lslo.cli.flags``), and the handle's former name."""

import argparse

import pytest
import torch
from pydantic import BaseModel, Field, ValidationError

from lslo.cli.flags import add_arguments, validation_problems
from lslo.devices import DTYPES, autocast_dtype, dtype_name, resolve_device, weights_dtype
from server.settings import ServerSettings


def test_dtype_names_round_trip():
    assert {dtype_name(d): d for d in DTYPES.values()} == {
        "fp32": torch.float32,
        "fp16": torch.float16,
        "bf16": torch.bfloat16,
    }
    with pytest.raises(ValueError, match="int8"):
        dtype_name(torch.int8)


def test_cpu_choices(caplog):
    cpu = torch.device("cpu")
    assert resolve_device("cpu") == cpu
    assert weights_dtype("auto", cpu) == torch.float32 and weights_dtype("fp32", cpu) == torch.float32
    with caplog.at_level("WARNING", logger="lslo"):
        assert weights_dtype("bf16", cpu) == torch.float32  # no fast half-precision matmuls on the CPU
    assert "bf16 asked for on CPU" in caplog.text
    assert autocast_dtype("auto", cpu) is None and autocast_dtype("bf16", cpu) is None


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the answers of a machine without CUDA")
def test_cuda_asked_for_without_cuda_is_refused_with_a_reason():
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available"):
        resolve_device("cuda:0")
    with pytest.raises(ValueError, match="not a device"):
        resolve_device("gpu0")


def test_training_reports_a_bad_device_with_the_other_problems(tmp_path):
    from lslo.errors import ConfigError
    from training.recipes.finetune import FinetuneSettings, run_finetune
    from training.settings import build_settings

    settings = build_settings(
        FinetuneSettings, {"base": tmp_path / "none", "data": tmp_path, "out": tmp_path / "o", "device": "tpu"}
    )
    with pytest.raises(ConfigError) as err:
        run_finetune(settings)
    assert any(p.startswith("--device: device 'tpu' is not a device") for p in err.value.problems)
    assert any("base model directory" in p for p in err.value.problems)  # reported together


def test_server_help_shows_real_defaults_only():
    parser = argparse.ArgumentParser()
    add_arguments(parser, ServerSettings, config_file=False)
    text = parser.format_help()
    assert "PydanticUndefined" not in text and "[default: 8000]" in text.replace("\n", " ")
    for flag in ("--api-keys", "--cors-origins", "--admin-token"):  # empty lists and secrets show no default
        line = " ".join(text.split(flag)[-1].split("--")[0].split())
        assert "default" not in line, (flag, line)


class _Options(BaseModel):
    epochs: int = Field(15, ge=1)
    prune_start: int


def test_validation_problems_as_flags_and_as_request_fields():
    with pytest.raises(ValidationError) as err:
        _Options(epochs=0)
    assert validation_problems(err.value, as_flags=True) == [
        "--epochs: Input should be greater than or equal to 1",
        "--prune-start is required",
    ]
    with_values = validation_problems(err.value, values=True)
    assert with_values[0] == "epochs: Input should be greater than or equal to 1 (got 0)"
    assert validation_problems(err.value)[1] == "prune_start: missing"
