from .student_export_hook import StudentExportHook  # noqa: F401
