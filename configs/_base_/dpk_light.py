# DPK's light module setting: one encoder block per side, one decoder block, 128-wide tokens, 4 heads.
# The authors' module sizes per pair (docs/dpk.md) are the reproduction setting of configs/dpk; on CPU the
# ImageNet ResNet-34 -> ResNet-18 modules cost about 3x a ResNet-18 training step (measured for issue 4). Use
# this one for quick runs, smaller budgets and the demos. Merge it into each DPKLoss, e.g.
#   _base_ = ['./dpk_retinanet_r101_r50_coco.py', '../_base_/dpk_light.py']
#   model = dict(distiller=dict(distill_losses=dict(loss_dpk_p4=_base_.dpk_light, ...)))
dpk_light = dict(embed_dims=128, encoder_depth=1, num_heads=4, decoder_dims=128, decoder_depth=1)
