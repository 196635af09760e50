# DPK's light module setting: one encoder block per side, one decoder block, 128-wide tokens, 4 heads.
# The authors' setting (6 encoder and 4 decoder blocks, stage-wide tokens, 8 heads) is the reproduction
# setting of configs/dpk; on CPU it costs about 3x a ResNet-18 training step (measured for issue 4). Use this one
# for detection at 2 images per GPU, for quick runs and for the demos. Merge it into each DPKLoss, e.g.
#   _base_ = ['./dpk_retinanet_r101_r50_coco.py', '../_base_/dpk_light.py']
#   model = dict(distiller=dict(distill_losses=dict(loss_dpk_p4=_base_.dpk_light, ...)))
dpk_light = dict(embed_dims=128, encoder_depth=1, decoder_depth=1, num_heads=4)
