from .query_seg_scores import QuerySegLogScores  # noqa: F401
from .recorders import (MethodOutputs, ModuleInputs, ModuleOutputs, RecorderManager,  # noqa: F401
                        find_submodule)
