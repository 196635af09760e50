# dpk_retinanet_r101_r50_coco.py with DPK's light modules (configs/_base_/dpk_light.py: one encoder block per side,
# one decoder block, 128-wide tokens, 4 heads) on every DPK level; FGD, inheriting and the optimizer as there.
# A cheaper variant, not the authors': their P4 module (a 1024-wide decoder over about 1000 tokens at 800 x 1333)
# dominates the cost of the DPK levels; this one is for runs on a smaller budget and for quick checks.
_base_ = ['./dpk_retinanet_r101_r50_coco.py', '../_base_/dpk_light.py']

model = dict(distiller=dict(distill_losses={f'loss_dpk_p{level}': _base_.dpk_light for level in (4, 5, 6, 7)}))
