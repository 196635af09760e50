# The DPK authors' detection layout on a 256-channel FPN (zongdaoming/dpk @7f66025, detection/configs/distillers/
# dpk/dpk_retina_cfg.py and dpk_faster_cfg.py): DPK modules per level with 4 encoder and 4 decoder blocks, 8 heads
# and at least 40 teacher tokens, DPK's generated map fed to FGD, plain FGD on the finer levels, each level with
# modules of its own. A config sets its FGD weights (`fgd`) and builds its losses from these, e.g.
#   distiller=dict(_base_.dpk_fgd_distiller_p3_p7, distill_losses=dict(
#       loss_fgd_p3=fgd, **{f'loss_dpk_{level}': dict(stage=level, feature_loss=fgd, **sizes,
#       **_base_.dpk_fpn_shared) for level, sizes in _base_.dpk_fpn_levels_p4_p7.items()}))
dpk_fpn_shared = dict(type='DPKLoss', student_channels=256, teacher_channels=256, encoder_depth=4, num_heads=8,
                      decoder_depth=4, min_tokens=40, loss_weight=1.0)
# The authors' module sizes per level: P4 patch 4, encoders 512 wide, decoder 1024; P5 patch 2, 256 / 512; P6 and
# P7 patch 1, 256 / 256 (RetinaNet). Faster R-CNN uses the P4 and P5 entries.
dpk_fpn_levels_p4_p7 = dict(p4=dict(patch_size=4, embed_dims=512, decoder_dims=1024),
                            p5=dict(patch_size=2, embed_dims=256, decoder_dims=512),
                            p6=dict(patch_size=1, embed_dims=256, decoder_dims=256),
                            p7=dict(patch_size=1, embed_dims=256, decoder_dims=256))
dpk_fpn_levels_p4_p5 = dict(p4=dpk_fpn_levels_p4_p7['p4'], p5=dpk_fpn_levels_p4_p7['p5'])


def _level_mappings(first_level, kinds_and_levels):
    """loss name -> the neck output of that level for student and teacher (the neck returns its levels as one
    tuple per step, finest first: data_idx = level - first_level)."""
    return {f'loss_{kind}_p{level}': dict(
        preds_S=dict(from_student=True, recorder='fpn', data_idx=level - first_level),
        preds_T=dict(from_student=False, recorder='fpn', data_idx=level - first_level))
        for kind, level in kinds_and_levels}


# One-stage detectors (neck outputs P3-P7): plain FGD on P3, DPK + FGD on P4-P7.
dpk_fgd_mappings_p3_p7 = _level_mappings(3, (('fgd', 3), ('dpk', 4), ('dpk', 5), ('dpk', 6), ('dpk', 7)))
# Two-stage detectors (neck outputs P2-P6): plain FGD on P2 and P3, DPK + FGD on P4 and P5.
dpk_fgd_mappings_p2_p6 = _level_mappings(2, (('fgd', 2), ('fgd', 3), ('dpk', 4), ('dpk', 5)))
# The neck's outputs, recorded once per step on both sides.
fpn_recorders = dict(fpn=dict(type='ModuleOutputs', source='neck'))
# The distiller but its losses (they carry each config's FGD weights): the neck's levels, recorded once per step,
# each loss reading one. FGDLoss (also inside DPKLoss) reads the ground-truth boxes from the batch's data samples.
dpk_fgd_distiller_p3_p7 = dict(type='ConfigurableDistiller', student_recorders=fpn_recorders,
                               teacher_recorders=fpn_recorders, loss_forward_mappings=dpk_fgd_mappings_p3_p7)
dpk_fgd_distiller_p2_p6 = dict(dpk_fgd_distiller_p3_p7, loss_forward_mappings=dpk_fgd_mappings_p2_p6)
