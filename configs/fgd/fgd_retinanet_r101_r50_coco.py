# FGD (Focal and Global Distillation, Yang et al., CVPR 2022) on COCO: RetinaNet R101-FPN teacher -> R50-FPN
# student, the FGD authors' RetinaNet recipe (yzd-v/FGD, fgd_retina_r101_fpn_2x_distill_retina_r50_fpn_2x_coco.py):
# one FGDLoss on each FPN level P3-P7 (256 channels on both sides, each level with context blocks of its own),
# temp 0.5, alpha 1e-3, beta 5e-4, gamma 5e-4, lambda 5e-6; mmdet's 2x schedule with SGD lr 0.01 at 2 images
# per GPU on 8 GPUs, and gradient clipping at max_norm 35 as the authors added. The student's neck and head
# start from the teacher's ("inheriting", the authors' init_student=True; the two FPNs and heads are built
# alike). The FGD modules (context blocks) train under the student's SGD, as the authors'.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'  # noqa: E501
fgd = dict(type='FGDLoss', in_channels=256, temp=0.5, alpha_fgd=0.001, beta_fgd=0.0005, gamma_fgd=0.0005,
           lambda_fgd=0.000005)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    inherit_from_teacher=['neck', 'bbox_head'],
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P3-P7 once per step; data_idx picks one (P3 is 0). These are
        # the outputs of neck.fpn_convs.0-4.conv that the authors recorded.
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        # FGDLoss reads the ground-truth boxes from the batch's data samples, passed by the distiller.
        distill_losses={f'loss_fgd_p{level}': fgd for level in (3, 4, 5, 6, 7)},
        loss_forward_mappings={
            f'loss_fgd_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 3),
                                       preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 3))
            for level in (3, 4, 5, 6, 7)
        }))

optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
