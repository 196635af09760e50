from .distill_val_loop import SelfDistillValLoop, SingleTeacherDistillValLoop  # noqa: F401
from .strict_load_runner import StrictLoadRunner  # noqa: F401
