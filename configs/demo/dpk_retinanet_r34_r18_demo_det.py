# Demo: DPK in the authors' detection form (configs/dpk/dpk_retinanet_r101_r50_coco.py) from the demo RetinaNet-R34
# teacher into the demo RetinaNet-R18 student (both FPNs 64 channels wide): DPK's generated map fed to FGD on some
# FPN levels, plain FGD on the others, the student's FPN output convs and head inherited from the teacher, one SGD
# (the student's, with its clipping) for the student, the DPK and the FGD modules. Scaled to the demo:
# - levels: the 128 x 128 images make P6 2 x 2 and P7 a single position, too few tokens for DPK, so DPK + FGD runs
#   on P3-P5 (16 x 16, 8 x 8, 4 x 4; patch sizes 2, 1, 1: 64, 64 and 16 tokens) and plain FGD on P6-P7 (the
#   authors: DPK + FGD on P4-P7, plain FGD on P3, at 800 x 1333);
# - DPK's light modules, at least 4 teacher tokens (the authors' 40 is most of a 64-token map);
# - inheriting: the FPN's lateral convs and its first extra conv read backbone stages of different widths (R34 at
#   half width, R18 at quarter width), so only the output convs of P3-P5 and P7 and the head are copied;
# - the authors' FGD weights of their RetinaNet R101 -> R50 config, untuned for the demo.
# `make demo` passes the teacher it trained as model.teacher_ckpt.
_base_ = ['./retinanet_r18_demo_det_student.py', '../_base_/distill_runtime.py', '../_base_/dpk_light.py']

fgd = dict(type='FGDLoss', in_channels=64, temp=0.5, alpha_fgd=2e-3, beta_fgd=2e-4, gamma_fgd=3e-4, lambda_fgd=5e-6)
dpk_shared = dict(type='DPKLoss', student_channels=64, teacher_channels=64, feature_loss=fgd, loss_weight=1.0,
                  **_base_.dpk_light)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdistkd::demo/retinanet_r18_demo_det_student.py'),
    # The demo's tolerant teacher, where `make demo` trains it (a missing file is an error naming
    # the command that trains it; benchmarks and tests pass model.teacher_ckpt=None for a random one).
    teacher=dict(cfg_path='mmdistkd::demo/tolerant_retinanet_r34_demo_det_teacher.py'),
    teacher_ckpt='work_dirs/demo/det/teacher/iter_1200.pth',
    inherit_from_teacher=['neck.fpn_convs.0', 'neck.fpn_convs.1', 'neck.fpn_convs.2', 'neck.fpn_convs.4', 'bbox_head'],
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P3-P7 once per step; data_idx picks one (P3 is 0).
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_dpk_p3=dict(patch_size=2, stage='p3', **dpk_shared),
            loss_dpk_p4=dict(patch_size=1, stage='p4', **dpk_shared),
            loss_dpk_p5=dict(patch_size=1, stage='p5', **dpk_shared),
            loss_fgd_p6=fgd,
            loss_fgd_p7=fgd),
        loss_forward_mappings={
            f'loss_{kind}_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 3),
                                          preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 3))
            for kind, level in (('dpk', 3), ('dpk', 4), ('dpk', 5), ('fgd', 6), ('fgd', 7))
        }))
