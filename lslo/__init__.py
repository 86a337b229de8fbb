"""Language-Specific LoRA (LSLo) for Hugging Face M2M100-class translation models.

Typical use::

    from lslo import LSLoConfig, inject
    config = LSLoConfig.from_strings("lang12", "2;2;8", modules="all", layer_map="paper")
    handle = inject(model, config)                    # model: M2M100ForConditionalGeneration
    with handle.route(src_langs, tgt_langs):          # one language pair per row
        loss = model(**batch).loss
"""

from lslo.adapters.config import LSLoConfig
from lslo.adapters.handle import AdapterMismatchError, LSLoHandle
from lslo.adapters.inject import find_lslo, inject
from lslo.adapters.layer import LSLoLinear
from lslo.adapters.layer_map import LayerMap
from lslo.adapters.modules import TargetModules, preset_modules
from lslo.errors import AdapterFileError, ConfigError, LSLoError, RoutingError
from lslo.languages.tables import LanguageInfo, LanguageSpec, load_table

__version__ = "0.1.0"


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
