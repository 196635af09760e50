# What every mmdistkd distillation config adds to its student's config (inherit it last in `_base_`, or copy
# these lines): the custom import (so upstream tools work too), a stop with a message when the loss stays
# non-finite, the student export at the end of training, and the teacher's metrics (computed once, prefixed
# "teacher.") next to the student's at every validation, with the student config's own val_cfg.
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)
custom_hooks = [dict(type='mmdistkd.NonFiniteLossHook'), dict(type='mmdistkd.StudentExportHook'),
                dict(type='mmdistkd.TeacherValHook')]
