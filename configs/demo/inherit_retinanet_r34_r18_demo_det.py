# Demo: inheriting alone. The student of dpk_retinanet_r34_r18_demo_det.py with the same modules inherited from
# the teacher (FPN output convs of P3-P5 and P7, the head) and no distillation loss (the teacher then does not
# run), at the same budget: `make demo` compares the DPK row with this one, seed by seed, to tell what DPK adds
# to inheriting.
_base_ = ['./dpk_retinanet_r34_r18_demo_det.py']

model = dict(distiller=dict(_delete_=True, type='ConfigurableDistiller'))
