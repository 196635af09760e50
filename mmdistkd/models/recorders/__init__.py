from .query_seg_scores import QuerySegLogScores  # noqa: F401
from .recorders import MethodOutputs, ModuleInputs, ModuleOutputs, RecorderManager, find_submodule  # noqa: F401
