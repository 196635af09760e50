# dpk_retinanet_r101_r50_coco.py with DPK's light module setting (configs/_base_/dpk_light.py: one encoder
# block per side, one decoder block, 128-wide tokens, 4 heads) on every FPN level.
_base_ = ['./dpk_retinanet_r101_r50_coco.py', '../_base_/dpk_light.py']

model = dict(distiller=dict(distill_losses={f'loss_dpk_p{level}': _base_.dpk_light for level in (4, 5, 6, 7)}))
