# The optimizer the DPK authors gave the DPK modules in classification (zongdaoming/dpk @7f66025:
# classification/optimizer.py, build_scheduler, and the TRAIN defaults of resnet_config.py and cifar_config.py),
# next to the student's own SGD: AdamW lr 1e-4, betas (0.9, 0.95), eps 1e-8, weight decay 1e-4 except on norms
# and biases (the authors also exempt the position embeddings, which here are a fixed table, not parameters);
# a linear warm-up from 1e-6 over 20 epochs, then cosine down to 1e-5, both stepped every iteration.
# A config uses it as the `distiller` entry of mmdistkd's SeparateDistillerOptimWrapperConstructor
# (docs/optimizers.md; `dpk_modules_beside_student` below) and ends the cosine at its last epoch, e.g.
#   optim_wrapper = dict(_base_.dpk_modules_beside_student, _delete_=True, architecture=dict(optimizer=...))
#   param_scheduler = dict(_delete_=True, architecture=[...],
#                          distiller=[_base_.dpk_modules_warmup, dict(**_base_.dpk_modules_cosine, end=100)])
dpk_modules_optim_wrapper = dict(
    optimizer=dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.0, bias_decay_mult=0.0))
# The whole `optim_wrapper` but the student's own (its `architecture` entry).
dpk_modules_beside_student = dict(constructor='mmdistkd.SeparateDistillerOptimWrapperConstructor',
                                  distiller=dpk_modules_optim_wrapper)
dpk_modules_warmup = dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=20,
                          convert_to_iter_based=True)  # 0.01 x 1e-4 = 1e-6
dpk_modules_cosine = dict(type='CosineAnnealingLR', eta_min=1e-5, by_epoch=True, begin=20, convert_to_iter_based=True)
# The same warm-up and cosine where the student's schedule sets the length (our detection and segmentation
# configs; the authors have no such recipe): the warm-up over the first fifth, as their 20 of 100 ImageNet epochs,
# then cosine to the end, which mmengine's Runner fills in from the train loop (mmdistkd/engine/schedulers.py).
# Epoch-based, stepped per iteration; an iteration-based student takes
#   dict(_base_.dpk_modules_warmup_cosine, by_epoch=False, convert_to_iter_based=False)
dpk_modules_warmup_cosine = dict(type='mmdistkd.LinearWarmupCosineLR', warmup_ratio=0.2, start_factor=0.01,
                                 eta_min=1e-5, by_epoch=True, convert_to_iter_based=True)
