# DPK on COCO: RetinaNet R101-FPN teacher -> RetinaNet R50-FPN, mmdet's 2x schedule, on the FPN levels P4-P7
# (indices 1-4 of the neck's P3-P7 outputs, 256 channels on both sides). Patch sizes 4, 2, 1, 1 keep every
# level near 13 x 21 tokens at 800 x 1333 inputs (P7: 7 x 11), so attention stays cheap.
# The authors fed the generated feature into the FGD loss; we use MSE against the teacher's level, weight 1
# per level (untuned: the authors published no MSE weight for detection). DPK's ratio is estimated over the
# spatial positions, so it follows the feature gap at 2 images per GPU (see mmdistkd/models/losses/cka.py).
# Authors' module sizes (6 + 4 blocks, 256-wide tokens, 8 heads); dpk_retinanet_r101_r50_coco_light.py is the
# light setting.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/retinanet/retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth'  # noqa: E501
dpk_shared = dict(type='DPKLoss', student_channels=256, teacher_channels=256, encoder_depth=6, decoder_depth=4,
                  num_heads=8, loss_weight=1.0)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P3-P7 once per step; data_idx picks one (P3 is 0).
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_dpk_p4=dict(patch_size=4, stage='p4', **dpk_shared),
            loss_dpk_p5=dict(patch_size=2, stage='p5', **dpk_shared),
            loss_dpk_p6=dict(patch_size=1, stage='p6', **dpk_shared),
            loss_dpk_p7=dict(patch_size=1, stage='p7', **dpk_shared)),
        loss_forward_mappings={
            f'loss_dpk_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 3),
                                       preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 3))
            for level in (4, 5, 6, 7)
        }))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')

# The DPK modules at SGD lr 0.01 in a parameter group of their own (see dpk_resnet34_resnet18_8xb32_in1k.py).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'distiller': dict(lr_mult=1.0)}))  # 1 x 0.01
