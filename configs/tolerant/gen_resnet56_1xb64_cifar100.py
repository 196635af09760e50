# Distillation in generations (docs/tolerant.md) on CIFAR-100: every generation is the CRD benchmark's
# ResNet-56 trained on the tolerant teacher's recipe (tolerant_resnet56_1xb64_cifar100.py) with its plain
# cross-entropy (only the first teacher is tolerant), distilled from the previous generation:
#     L = lambda * CE + (1 - lambda) * KL(p_teacher || p_student), temperature 1.
# lambda = 0.5 and temperature 1 are ours (the paper's values could not be retrieved): lambda not swept; at
# temperature 1 the student matches the teacher's plain softmax, whose few secondary classes TSD shaped
# (docs/tolerant.md).
# Run the chain with tools/generations.py, which passes each previous generation's checkpoint as
# model.teacher_ckpt (--strict gives the strict chain to compare with, in another work dir):
#   python tools/generations.py configs/tolerant/tolerant_resnet56_1xb64_cifar100.py \
#       configs/tolerant/gen_resnet56_1xb64_cifar100.py --generations 3 --work-dir work_dirs/gen_resnet56_cifar100
# The teacher's recipe; its custom_imports comes with it, so only the non-finite stop and the student export
# hooks are added.
_base_ = ['./tolerant_resnet56_1xb64_cifar100.py', '../_base_/recipes/generations.py']
custom_hooks = [dict(type='mmdistkd.NonFiniteLossHook'), dict(type='mmdistkd.StudentExportHook'),
                dict(type='mmdistkd.TeacherValHook')]
tolerant_teacher = 'mmdistkd::tolerant/tolerant_resnet56_1xb64_cifar100.py'

model = dict(
    _base_.generation_model,
    _delete_=True,
    # the teacher's model with the cross-entropy it wraps
    architecture=dict(cfg_path=tolerant_teacher,
                      head=dict(loss=dict(_delete_=True, type='CrossEntropyLoss', loss_weight=1.0))),
    teacher=dict(cfg_path=tolerant_teacher),
    distiller=_base_.generation_classifier_distiller)
