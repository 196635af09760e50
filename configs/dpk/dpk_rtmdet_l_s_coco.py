# DPK (Qiu et al., ICLR 2023) on COCO for RTMDet: RTMDet-L teacher (mmdet model zoo: 51.3 box AP) -> RTMDet-S
# (44.5 box AP), the student's upstream recipe (300 epochs, AdamW, EMA, the pipeline switch for the last 20
# epochs; the pair of dist_rtmdet_l_s_coco.py). The DPK authors (zongdaoming/dpk) have no RTMDet config and no
# published DPK number exists for RTMDet: ours would be new.
# The DPK authors' detection form (dpk_retinanet_r101_r50_coco.py) on the CSPNeXtPAFPN's 3 levels (strides 8, 16,
# 32; teacher 256 channels, student 128), each level given the RetinaNet level of its stride:
# - DPK on P4 (patch 4, encoders 512 wide, decoder 1024) and P5 (patch 2, encoders 256, decoder 512), 4 encoder
#   and 4 decoder blocks, 8 heads, at least 40 teacher tokens (at 640 x 640: 100 tokens on each), its generated
#   map (teacher width) fed to FGD; plain FGD on P3, whose 1x1 align conv maps the student's 128 channels to 256.
# - FGD weights from the FGD authors' YOLOX-L -> YOLOX-M config (yzd-v/FGD, fgd_yoloxl_distill_yoloxm_coco.py: a
#   3-level CSP PAFPN pair of different widths, as here): temp 0.5, alpha 2e-3, beta 1e-3, gamma 1e-3,
#   lambda 1e-5. The FGD authors have no RTMDet config; untuned here.
# - No inheriting: the teacher's neck and head are twice the student's width (so do the FGD authors for YOLOX).
# - The DPK and FGD modules train on their own AdamW (configs/_base_/recipes/dpk_modules_adamw.py), warmed up over
#   the first fifth of the epochs, then cosine to the last; the student keeps RTMDet's AdamW and schedule.
# pi from our token CKA (pi_from='tokens'), as in the other detection configs (docs/dpk.md). RTMDet trains at 32
# images per GPU, where the authors' batch CKA is defined; no measurement here says which rule serves it better.
# Not inheriting configs/_base_/distill_runtime.py: RTMDet's config has custom_hooks of its own (mmengine refuses a
# key defined in two bases), so its lines are repeated below. The EMA weights are in the training checkpoints,
# student_final.pth holds the raw ones.
_base_ = ['mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py', '../_base_/recipes/dpk_modules_adamw.py']
custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)
custom_hooks = [*_base_.custom_hooks, dict(type='mmdistkd.NonFiniteLossHook'),
                dict(type='mmdistkd.StudentExportHook'),
                dict(type='mmdistkd.TeacherValHook')]

teacher_ckpt = 'https://download.openmmlab.com/mmdetection/v3.0/rtmdet/rtmdet_l_8xb32-300e_coco/rtmdet_l_8xb32-300e_coco_20220719_112030-5a0be7c4.pth'  # noqa: E501
fgd = dict(type='FGDLoss', in_channels=256, temp=0.5, alpha_fgd=2e-3, beta_fgd=1e-3, gamma_fgd=1e-3, lambda_fgd=1e-5)
dpk_shared = dict(type='DPKLoss', student_channels=128, teacher_channels=256, encoder_depth=4, num_heads=8,
                  decoder_depth=4, min_tokens=40, feature_loss=fgd, loss_weight=1.0)
model = dict(
    _delete_=True,
    type='mmdistkd.SingleTeacherDistill',
    architecture=dict(cfg_path='mmdet::rtmdet/rtmdet_s_8xb32-300e_coco.py'),
    teacher=dict(cfg_path='mmdet::rtmdet/rtmdet_l_8xb32-300e_coco.py'),
    teacher_ckpt=teacher_ckpt,
    distiller=dict(
        type='ConfigurableDistiller',
        # The neck returns the tuple of levels P3-P5 once per step; data_idx picks one (P3 is 0).
        student_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        teacher_recorders=dict(fpn=dict(type='ModuleOutputs', source='neck')),
        # FGDLoss (also inside DPKLoss) reads the ground-truth boxes from the batch's data samples.
        distill_losses=dict(
            loss_fgd_p3=dict(fgd, student_channels=128),
            loss_dpk_p4=dict(patch_size=4, embed_dims=512, decoder_dims=1024, stage='p4', **dpk_shared),
            loss_dpk_p5=dict(patch_size=2, embed_dims=256, decoder_dims=512, stage='p5', **dpk_shared)),
        loss_forward_mappings={
            f'loss_{kind}_p{level}': dict(preds_S=dict(from_student=True, recorder='fpn', data_idx=level - 3),
                                          preds_T=dict(from_student=False, recorder='fpn', data_idx=level - 3))
            for kind, level in (('fgd', 3), ('dpk', 4), ('dpk', 5))
        }))

optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True,
                     architecture=_base_.optim_wrapper)
param_scheduler = dict(_delete_=True, architecture=_base_.param_scheduler,
                       distiller=_base_.dpk_modules_warmup_cosine)
