from .distill_val_loop import SingleTeacherDistillValLoop  # noqa: F401
