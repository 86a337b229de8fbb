"""Former module of the handle ``lslo.inject`` returns; it is ``lslo.handle.LSLoHandle`` now."""

import warnings

from lslo.handle import AdaptedModule, AdapterMismatchError, LSLoHandle

warnings.warn("lslo.model is now lslo.handle, and LSLoModel is LSLoHandle", DeprecationWarning, stacklevel=2)
LSLoModel = LSLoHandle

__all__ = ["AdaptedModule", "AdapterMismatchError", "LSLoHandle", "LSLoModel"]
