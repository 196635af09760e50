from .recorders import (MethodOutputs, ModuleInputs, ModuleOutputs, RecorderManager,  # noqa: F401
                        find_submodule)
