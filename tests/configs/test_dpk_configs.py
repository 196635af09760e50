"""DPK configs beyond the smoke test of every method config (tests/configs/test_method_configs.py): each is set
to the authors' recipe for its pair (module sizes, prior-ratio rule, the DPK modules' optimizer; in detection
DPK into FGD, plain FGD, inheriting), the DPK modules are trained (gradients, their optimizer), are left out of
the exported student, and need no ``find_unused_parameters`` under DDP; the ratio ``pi`` reaches the run's
``scalars.json`` and tools/analysis/plot_dpk_ratio.py draws it."""
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.analysis.run_logs import scalar_records
from mmdistkd.analysis.synthetic import synthetic_batch
from mmdistkd.models.losses import DPKLoss, FGDLoss
from mmdistkd.registry import MODELS
from mmdistkd.testing import REPO, free_port, run_tool
from mmdistkd.utils.student import student_state_dict

DEMO_CLS = 'configs/demo/dpk_resnet34_resnet18_demo_cls.py'
DPK_CONFIGS = sorted(glob.glob(osp.join(REPO, 'configs', 'dpk', '*.py')) +
                     glob.glob(osp.join(REPO, 'configs', 'demo', 'dpk_*.py')))
DETECTION = [c for c in DPK_CONFIGS if 'retinanet' in c or 'faster-rcnn' in c]
OWN_ADAMW = [c for c in DPK_CONFIGS if c not in DETECTION]
# The prior-ratio rule of each config: the authors' where their batch estimator is defined (classification at
# 16 to 64 images per GPU), ours (token CKA) at 2 images per GPU (detection, segmentation).
PI_FROM = {'in1k': 'authors_imagenet', 'cifar100': 'authors_cifar', 'demo_cls': 'authors_imagenet',
           'coco': 'tokens', 'demo_det': 'tokens', 'cityscapes': 'tokens', 'demo_seg': 'tokens'}
# The authors' modules (zongdaoming/dpk @7f66025, classification/modeling_pretrain.py and
# detection/configs/distillers/dpk/dpk_*_cfg.py): per loss, (patch, encoder width, encoder depth, encoder heads,
# decoder width, decoder depth, decoder heads).
AUTHORS_MODULES = {
    'dpk_resnet34_resnet18_8xb32_in1k': dict(loss_dpk_layer3=(1, 256, 6, 8, 256, 4, 8),
                                             loss_dpk_layer4=(1, 512, 6, 8, 512, 4, 8)),
    'dpk-dist_resnet34_resnet18_8xb32_in1k': dict(loss_dpk_layer3=(1, 256, 6, 8, 256, 4, 8),
                                                  loss_dpk_layer4=(1, 512, 6, 8, 512, 4, 8)),
    'dpk_resnet50_resnet18_8xb32_in1k': dict(loss_dpk_layer3=(2, 512, 4, 8, 1024, 4, 16),
                                             loss_dpk_layer4=(1, 640, 6, 8, 1024, 4, 8)),
    'dpk_retinanet_r101_r50_coco': dict(loss_dpk_p4=(4, 512, 4, 8, 1024, 4, 8), loss_dpk_p5=(2, 256, 4, 8, 512, 4, 8),
                                        loss_dpk_p6=(1, 256, 4, 8, 256, 4, 8), loss_dpk_p7=(1, 256, 4, 8, 256, 4, 8)),
    'dpk_faster-rcnn_r101_r50_coco': dict(loss_dpk_p4=(4, 512, 4, 8, 1024, 4, 8),
                                          loss_dpk_p5=(2, 256, 4, 8, 512, 4, 8)),
    'dpk_resnet110_resnet20_1xb64_cifar100': dict(loss_dpk_last=(1, 64, 6, 8, 128, 4, 8),
                                                  loss_dpk_before_last=(1, 64, 6, 8, 128, 4, 8)),
    'dpk_resnet110_resnet32_1xb64_cifar100': dict(loss_dpk_last=(1, 128, 6, 8, 128, 4, 8),
                                                  loss_dpk_before_last=(1, 64, 6, 8, 64, 6, 8)),
    'dpk_wrn-40-2_wrn-40-1_1xb64_cifar100': dict(loss_dpk_last=(1, 80, 6, 8, 128, 4, 8),
                                                 loss_dpk_before_last=(1, 64, 6, 4, 80, 4, 4)),
    'dpk_wrn-40-2_wrn-16-2_1xb64_cifar100': dict(loss_dpk_last=(1, 256, 6, 8, 256, 4, 8),
                                                 loss_dpk_before_last=(1, 128, 6, 8, 128, 4, 8)),
    'dpk_vgg13_vgg8_1xb64_cifar100': dict(loss_dpk_last=(1, 320, 6, 8, 512, 4, 8),
                                          loss_dpk_before_last=(1, 160, 6, 8, 256, 6, 8)),
    'dpk_wrn-40-2_shufflenet-v1_1xb64_cifar100': dict(loss_dpk_last=(1, 320, 6, 8, 128, 4, 8),
                                                      loss_dpk_before_last=(1, 256, 6, 8, 128, 4, 8)),
    'dpk_resnet32x4_shufflenet-v1_1xb64_cifar100': dict(loss_dpk_last=(1, 512, 6, 8, 256, 4, 8),
                                                        loss_dpk_before_last=(1, 256, 6, 8, 128, 4, 8)),
    'dpk_vgg13_mobilenet-v2_1xb64_cifar100': dict(loss_dpk_last=(1, 320, 6, 8, 512, 4, 8),
                                                  loss_dpk_before_last=(1, 128, 6, 4, 256, 4, 4)),
}
# The authors' FGD weights per detection pair (temp, alpha, beta, gamma, lambda).
AUTHORS_FGD = {'retinanet_r101_r50': (0.5, 2e-3, 2e-4, 3e-4, 5e-6),
               'faster-rcnn_r101_r50': (0.5, 5e-5, 2.5e-5, 5e-5, 5e-7),
               'retinanet_r34_r18_demo': (0.5, 2e-3, 2e-4, 3e-4, 5e-6)}


def config_id(config):
    return osp.splitext(osp.basename(config))[0]


def build(cfg):
    """The config's model without its teacher checkpoint (no downloads in tests)."""
    cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return MODELS.build(cfg.model)


def dpk_losses(cfg):
    return {name: loss for name, loss in cfg.model.distiller.distill_losses.items() if loss.type.endswith('DPKLoss')}


def fgd_of(loss_cfg):
    return (loss_cfg.temp, loss_cfg.alpha_fgd, loss_cfg.beta_fgd, loss_cfg.gamma_fgd, loss_cfg.lambda_fgd)


def param_ids(params):
    return {id(p) for p in params}


def test_the_authors_module_sizes():
    built = {}
    for config in DPK_CONFIGS:
        if config_id(config) not in AUTHORS_MODULES:
            continue
        model = build(Config.fromfile(config)).distiller.distill_losses
        built[config_id(config)] = {
            name: (loss.patch_size, loss.embed_dims, len(loss.student_encoder.blocks),
                   loss.student_encoder.blocks[0].attn.num_heads, loss.decoder_dims, len(loss.decoder.blocks),
                   loss.decoder.blocks[0].attn.num_heads)
            for name, loss in model.items() if isinstance(loss, DPKLoss)}
    assert built == AUTHORS_MODULES


@pytest.mark.parametrize('config', DPK_CONFIGS, ids=[config_id(c) for c in DPK_CONFIGS])
def test_pi_rule_of_every_config(config):
    cfg = Config.fromfile(config)
    setting = next(key for key in PI_FROM if key in config_id(config))
    assert {loss.get('pi_from', 'tokens') for loss in dpk_losses(cfg).values()} == {PI_FROM[setting]}
    if PI_FROM[setting] != 'tokens':
        assert cfg.train_dataloader.batch_size >= 4, 'the authors\' batch CKA needs at least 4 images per GPU'


@pytest.mark.parametrize('config', OWN_ADAMW, ids=[config_id(c) for c in OWN_ADAMW])
def test_dpk_modules_have_the_authors_adamw_and_schedule(config):
    cfg = Config.fromfile(config)
    assert cfg.optim_wrapper.constructor == 'mmdistkd.SeparateDistillerOptimWrapperConstructor'
    distiller = cfg.optim_wrapper.distiller
    assert distiller.optimizer == dict(type='AdamW', lr=1e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=1e-4)
    assert distiller.paramwise_cfg == dict(norm_decay_mult=0.0, bias_decay_mult=0.0)
    # The student keeps its own optimizer: SGD, or RTMDet's AdamW.
    assert cfg.optim_wrapper.architecture.optimizer.type == ('AdamW' if 'rtmdet' in config_id(config) else 'SGD')
    schedule = cfg.param_scheduler.distiller
    if isinstance(schedule, dict):
        # Warm-up over the first fifth of the student's schedule, whose end the Runner fills in (by_epoch says
        # which: the student's train loop must count the same unit).
        assert (schedule.type, schedule.warmup_ratio, schedule.start_factor, schedule.eta_min) == (
            'mmdistkd.LinearWarmupCosineLR', 0.2, 0.01, 1e-5)
        assert 'end' not in schedule and schedule.by_epoch == ('max_epochs' in cfg.train_cfg)
    else:  # the authors' 20 warm-up epochs, then cosine to the last
        warmup, cosine = schedule
        assert (warmup.type, warmup.start_factor, warmup.begin, warmup.end) == ('LinearLR', 0.01, 0, 20)
        assert (cosine.type, cosine.eta_min, cosine.begin) == ('CosineAnnealingLR', 1e-5, warmup.end)
        assert cosine.end == cfg.train_cfg.max_epochs and warmup.by_epoch and cosine.by_epoch
    assert cfg.param_scheduler.architecture


@pytest.mark.parametrize('config', DETECTION, ids=[config_id(c) for c in DETECTION])
def test_detection_feeds_dpk_into_fgd_inherits_and_shares_the_detectors_sgd(config):
    cfg = Config.fromfile(config)
    losses = cfg.model.distiller.distill_losses
    dpk = dpk_losses(cfg)
    plain_fgd = {name: loss for name, loss in losses.items() if loss.type.endswith('FGDLoss')}
    assert dpk and plain_fgd and set(losses) == set(dpk) | set(plain_fgd)
    pair = next(key for key in AUTHORS_FGD if key in config_id(config))
    assert all(fgd_of(loss.feature_loss) == AUTHORS_FGD[pair] for loss in dpk.values())
    assert all(fgd_of(loss) == AUTHORS_FGD[pair] for loss in plain_fgd.values())
    assert cfg.model.inherit_from_teacher
    # One optimizer for the student, DPK and FGD modules, as the authors (no learning-rate key of their own).
    assert 'constructor' not in cfg.optim_wrapper and 'paramwise_cfg' not in cfg.optim_wrapper
    assert cfg.optim_wrapper.optimizer.type == 'SGD' and cfg.optim_wrapper.clip_grad.max_norm == 35

    model = build(cfg)
    for loss in model.distiller.distill_losses.values():
        assert isinstance(loss.feature_loss if isinstance(loss, DPKLoss) else loss, FGDLoss)


def test_dpk_modules_train_on_their_own_optimizer_and_stay_out_of_the_export():
    cfg = Config.fromfile(osp.join(REPO, DEMO_CLS))
    model = build(cfg)
    model.train()
    dpk_params = list(model.distiller.parameters())
    assert dpk_params, 'the DPK modules are parameters of the distiller'

    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        optim_wrapper = build_optim_wrapper(model, cfg.optim_wrapper)

    def wrapper_params(entry):
        return [p for group in optim_wrapper[entry].optimizer.param_groups for p in group['params']]
    assert param_ids(wrapper_params('distiller')) == param_ids(dpk_params)
    assert param_ids(wrapper_params('architecture')) == param_ids(model.student.parameters())
    assert type(optim_wrapper['distiller'].optimizer).__name__ == 'AdamW'

    ratio_keys = {loss.ratio_key for loss in model.distiller.distill_losses.values() if isinstance(loss, DPKLoss)}
    assert ratio_keys == {'dpk_pi.layer3', 'dpk_pi.layer4'}
    batch = synthetic_batch('cls', 8, 32, 32, 10)
    total, log_vars = model.parse_losses(model.loss(**model.data_preprocessor(batch, True)))
    assert torch.isfinite(total) and all(0 < log_vars[key] < 1 for key in ratio_keys)
    before = [p.detach().clone() for p in dpk_params]
    optim_wrapper.backward(total)
    # Every DPK parameter is on the loss's graph (what DDP without find_unused_parameters needs).
    assert all(p.grad is not None for p in dpk_params)
    optim_wrapper.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, dpk_params))

    exported = student_state_dict(model.state_dict())
    assert set(exported) == set(model.student.state_dict())
    assert not any('distiller' in key or 'dpk' in key for key in exported)


def test_demo_trains_under_two_process_cpu_ddp_and_logs_pi(demo_data, tmp_path):
    """DDP without find_unused_parameters raises at the second step if a parameter got no gradient in the
    first; rank 0's scalars.json then holds pi per stage, which the plot tool draws."""
    cfg = Config.fromfile(osp.join(REPO, DEMO_CLS))
    assert not cfg.get('find_unused_parameters') and 'model_wrapper_cfg' not in cfg
    work_dir = tmp_path / 'ddp'
    result = run_tool(['bash', 'tools/dist_train.sh', DEMO_CLS, '2', '--work-dir', str(work_dir), '--cfg-options',
                       'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'default_hooks.logger.interval=1',
                       'train_dataloader.batch_size=2', 'val_dataloader.dataset.indices=8', 'model.teacher_ckpt=None'],
                      env={'PORT': free_port()})
    assert 'Distributed training: True' in result.stdout + result.stderr
    exported = torch.load(work_dir / 'student_final.pth', map_location='cpu', weights_only=True)['state_dict']
    assert exported and not any('distiller' in key or 'dpk' in key for key in exported)

    train_records = [r for r in scalar_records(str(work_dir)) if 'dpk_pi.layer3' in r]
    assert [r['step'] for r in train_records] == [1, 2]
    assert all(0 < r[key] < 1 for r in train_records for key in ('dpk_pi.layer3', 'dpk_pi.layer4'))

    png = tmp_path / 'pi.png'
    run_tool(['tools/analysis/plot_dpk_ratio.py', str(work_dir), '--out', str(png)])
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
