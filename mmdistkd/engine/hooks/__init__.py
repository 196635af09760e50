from .non_finite_loss_hook import NonFiniteLossHook  # noqa: F401
from .razor_visualization_hook import RazorVisualizationHook  # noqa: F401
from .student_export_hook import StudentExportHook  # noqa: F401
from .teacher_val_hook import TeacherValHook  # noqa: F401
