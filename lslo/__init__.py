"""Language-Specific LoRA (LSLo) for Hugging Face M2M100-class translation models.

Typical use::

    from lslo import LSLoConfig, inject
    config = LSLoConfig.from_strings("lang12", "2;2;8", modules="all", layer_map="paper")
    handle = inject(model, config)                    # model: M2M100ForConditionalGeneration
    with handle.route(src_langs, tgt_langs):          # one language pair per row
        loss = model(**batch).loss
"""

import warnings
from typing import Any

from lslo.config import LSLoConfig
from lslo.errors import AdapterFileError, ConfigError, LSLoError, RoutingError
from lslo.handle import AdapterMismatchError, LSLoHandle
from lslo.inject import find_lslo, inject
from lslo.languages import LanguageInfo, LanguageSpec, load_table
from lslo.layer import LSLoLinear
from lslo.layer_map import LayerMap
from lslo.modules import TargetModules, preset_modules

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "LSLoModel":  # the handle's former name: it is not an nn.Module
        warnings.warn("lslo.LSLoModel is now lslo.LSLoHandle", DeprecationWarning, stacklevel=2)
        return LSLoHandle
    raise AttributeError(f"module 'lslo' has no attribute {name!r}")


__all__ = [
    "AdapterFileError",
    "AdapterMismatchError",
    "ConfigError",
    "LSLoConfig",
    "LSLoError",
    "LSLoLinear",
    "LSLoHandle",
    "LanguageInfo",
    "LanguageSpec",
    "LayerMap",
    "RoutingError",
    "TargetModules",
    "find_lslo",
    "inject",
    "load_table",
    "preset_modules",
]
