from .hooks import *  # noqa: F401, F403
from .optimizers import *  # noqa: F401, F403
from .runner import *  # noqa: F401, F403
from .schedulers import LinearWarmupCosineLR  # noqa: F401
