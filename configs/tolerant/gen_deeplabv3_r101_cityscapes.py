# Distillation in generations (docs/tolerant.md) on Cityscapes: every generation is mmseg's DeepLabV3
# R101-D8 80k (plain cross-entropy: only the first teacher is tolerant), distilled from the previous one:
#     L = lambda * (CE + 0.4 CE_aux) + (1 - lambda) * (KL + 0.4 KL_aux), per pixel, temperature 1.
# Run the chain with tools/generations.py, which passes each previous generation's checkpoint as
# model.teacher_ckpt:
#   python tools/generations.py configs/tolerant/tolerant_deeplabv3_r101_cityscapes.py \
#       configs/tolerant/gen_deeplabv3_r101_cityscapes.py --generations 2 --work-dir work_dirs/gen_deeplabv3
_base_ = [
    'mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py', '../_base_/distill_runtime.py',
    '../_base_/recipes/generations.py'
]

model = dict(
    _base_.generation_model,
    _delete_=True,
    architecture=dict(cfg_path='mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-80k_cityscapes-512x1024.py'),
    teacher=dict(cfg_path='mmdistkd::tolerant/tolerant_deeplabv3_r101_cityscapes.py'),
    teacher_forward='seg_decode_aux',
    distiller=_base_.generation_decode_aux_distiller)
