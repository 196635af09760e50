# DPK on COCO for a two-stage detector: Faster R-CNN R101-FPN teacher -> Faster R-CNN R50-FPN, mmdet's 2x
# schedule, on the FPN levels P4-P5 (indices 2-3 of the neck's P2-P6 outputs, 256 channels on both sides).
# Patch sizes 4 and 2 give about 13 x 21 tokens per level at 800 x 1333 inputs. MSE against the teacher's
# level, weight 1 per level (the authors used the FGD loss on the generated feature instead; see
# dpk_retinanet_r101_r50_coco.py), the authors' module sizes.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../_base_/distill_runtime.py']

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/faster_rcnn_r101_fpn_2x_coco/faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth'  # noqa: E501
dpk_shared = dict(type='DPKLoss', student_channels=256, teacher_channels=256, encoder_depth=6, decoder_depth=4,
                  num_heads=8, loss_weight=1.0)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py'),
    teacher=dict(cfg_path='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py'),
    teacher_ckpt=teacher_ckpt,
    # Only the teacher's FPN is needed; mode 'tensor' also runs its RPN and RoI head.
    teacher_forward='tensor',
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P2-P6 once per step; data_idx picks one (P2 is 0).
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        distill_losses=dict(
            loss_dpk_p4=dict(patch_size=4, stage='p4', **dpk_shared),
            loss_dpk_p5=dict(patch_size=2, stage='p5', **dpk_shared)),
        loss_forward_mappings={
            f'loss_dpk_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 2),
                                       preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 2))
            for level in (4, 5)
        }))
val_cfg = dict(_delete_=True, type='mmdistkd.SingleTeacherDistillValLoop')

# The DPK modules at SGD lr 0.01 in a parameter group of their own (see dpk_resnet34_resnet18_8xb32_in1k.py).
optim_wrapper = dict(paramwise_cfg=dict(custom_keys={'distiller': dict(lr_mult=0.5)}))  # 0.5 x 0.02
