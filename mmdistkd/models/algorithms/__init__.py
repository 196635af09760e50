from .single_teacher_distill import SingleTeacherDistill  # noqa: F401
