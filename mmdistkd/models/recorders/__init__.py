from .query_seg_scores import QuerySegLogScores  # noqa: F401
from .recorders import (  # noqa: F401
    FunctionInputs,
    FunctionOutputs,
    MethodInputs,
    MethodOutputs,
    ModuleInputs,
    ModuleOutputs,
    ParameterRecorder,
    RecorderManager,
    find_submodule,
)
