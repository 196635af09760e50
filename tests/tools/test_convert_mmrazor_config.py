"""tools/misc/convert_mmrazor_config.py: each rewrite on small configs, the printed report, the unresolved-path
error; then MMRazor 1.0's 31 distillation configs (mmcls, mmdet, mmseg), converted by the tool, each train one step
through tools/train.py on tiny generated stand-ins of their datasets, with random teachers and nothing downloaded.

The 31 steps run in one process (``drive``, which calls tools/train.py's ``main`` once per config): importing
torch and the three OpenMMLab packages once instead of 31 times is most of the time saved. The stand-in CIFAR files
cannot match the real CIFAR's checksums, which mmpretrain's CIFAR datasets check: that process gives the CIFAR
classes the stand-ins' checksums instead (nothing else of the dataset code changes)."""
import ast
import gc
import hashlib
import io
import json
import math
import os
import os.path as osp
import pickle
import runpy
import shutil
import subprocess
import sys
import time
import tokenize
import traceback

import numpy as np
import pytest

from mmdistkd.testing import load_tool

TESTS = osp.dirname(osp.dirname(osp.abspath(__file__)))
REPO = osp.dirname(TESTS)
TOOL = osp.join(REPO, 'tools', 'misc', 'convert_mmrazor_config.py')
tool = load_tool(TOOL)
ZOO = tool.mmrazor_zoo()
# MMRazor's 31 distillation configs this project trains: all but mmdet3d's (mmdet3d is not a dependency) and the
# CRD dataset file (a _base_, no model).
ZOO_CONFIGS = sorted(
    osp.relpath(osp.join(folder, name), ZOO) for folder, _, names in os.walk(ZOO) for name in names
    if name.endswith('.py') and not osp.relpath(folder, ZOO).startswith('mmdet3d')
    and osp.relpath(folder, ZOO) != osp.join('mmcls', 'crd', 'datasets'))


def run_converter(*args, check=True):
    result = subprocess.run([sys.executable, TOOL, *map(str, args)], cwd=REPO, capture_output=True, text=True,
                            timeout=120)
    if check and result.returncode != 0:
        pytest.fail(f'convert_mmrazor_config.py {" ".join(map(str, args))} exited {result.returncode}\n'
                    f'{result.stdout[-4000:]}\n{result.stderr[-4000:]}')
    return result


def string_literals(text):
    """Every plain string literal of a config's text."""
    return [ast.literal_eval(token.string) for token in tokenize.generate_tokens(io.StringIO(text).readline)
            if token.type == tokenize.STRING]


def write(path, text):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w', encoding='utf-8') as file:
        file.write(text)
    return path


def read(path):
    with open(path, encoding='utf-8') as file:
        return file.read()


# ---------------------------------------------------------------------------------------------- each rewrite

MMRAZOR_CONFIG = """\
_base_ = [
    'mmcls::_base_/datasets/imagenet_bs32.py',  # a comment that stays
    'mmdet::faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py',
]
model = dict(
    _scope_='mmrazor',
    type='SingleTeacherDistill',
    architecture=dict(type='mmcls.ImageClassifier', head=dict(type='mmrazor.DeiTClsHead')),
    teacher=dict(_scope_='mmcls', type='ImageClassifier'),
    distiller=dict(type='ConfigurableDistiller'))
url = 'https://download.openmmlab.com/mmrazor/v1/x.pth'  # not a scope
pipeline = [dict(type='PackClsInputs'), dict(type="mmcls.PackClsInputs")]
val_cfg = dict(_delete_=True, type='mmrazor.SingleTeacherDistillValLoop')
"""


def test_every_string_rewrite_and_nothing_else(tmp_path):
    src = write(tmp_path / 'src' / 'kd.py', MMRAZOR_CONFIG)
    run_converter(src, tmp_path / 'out.py')
    converted = read(tmp_path / 'out.py')
    expected = MMRAZOR_CONFIG
    for old, new in [("'mmcls::_base_/datasets/imagenet_bs32.py'", "'mmpretrain::_base_/datasets/imagenet_bs32.py'"),
                     ("'mmdet::faster_rcnn/faster_rcnn_r50_fpn_1x_coco.py'",
                      "'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'"),
                     ("_scope_='mmrazor'", "_scope_='mmdistkd'"), ("_scope_='mmcls'", "_scope_='mmpretrain'"),
                     ("'mmcls.ImageClassifier'", "'mmpretrain.ImageClassifier'"),
                     ("'mmrazor.DeiTClsHead'", "'mmdistkd.DeiTClsHead'"),
                     ("'PackClsInputs'", "'PackInputs'"), ('"mmcls.PackClsInputs"', '"mmpretrain.PackInputs"'),
                     ("'mmrazor.SingleTeacherDistillValLoop'", "'mmdistkd.SingleTeacherDistillValLoop'"),
                     (']\nmodel', "]\ncustom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)\nmodel")]:
        assert expected.count(old) == 1, old
        expected = expected.replace(old, new)
    # Comments, layout, quotes and the URL are kept: the text is the original with those substitutions only.
    assert converted == expected


def test_mmrazor_and_outside_relative_paths_are_converted_beside_the_file(tmp_path):
    """BYOT's base outside the converted tree and OFD's mmrazor:: students come along, converted, with their own
    outside bases; a user copying the output folder has every file the config reads."""
    src = osp.join(ZOO, 'mmcls', 'byot', 'byot_resnet18_8xb16_cifar100.py')
    run_converter(src, tmp_path / 'byot' / 'byot.py')
    assert sorted(os.listdir(tmp_path / 'byot')) == ['auto_aug_cifar.py', 'byot.py', 'cifar100_bs16_auto_aug.py']
    assert "'./cifar100_bs16_auto_aug.py'" in read(tmp_path / 'byot' / 'byot.py')
    dataset = read(tmp_path / 'byot' / 'cifar100_bs16_auto_aug.py')
    assert "_base_ = ['./auto_aug_cifar.py']" in dataset and 'PackClsInputs' not in dataset

    run_converter(osp.join(ZOO, 'mmcls', 'ofd', 'ofd_backbone_resnet50_resnet18_8xb16_cifar10.py'), tmp_path / 'ofd')
    assert sorted(os.listdir(tmp_path / 'ofd')) == [
        'ofd_backbone_resnet50_resnet18_8xb16_cifar10.py', 'wrn16-w2_b16x8_cifar10.py', 'wrn16_2_cifar10.py',
        'wrn28-w4_b16x8_cifar10.py']
    ofd = read(tmp_path / 'ofd' / 'ofd_backbone_resnet50_resnet18_8xb16_cifar10.py')
    assert "'./wrn16-w2_b16x8_cifar10.py'" in ofd and "'./wrn28-w4_b16x8_cifar10.py'" in ofd
    assert "_scope_='mmdistkd',\n        type='WideResNet'" in read(tmp_path / 'ofd' / 'wrn16_2_cifar10.py')

    # A single file whose `./` base is outside what is converted gets it beside it, path unchanged.
    run_converter(osp.join(ZOO, 'mmdet', 'pkd', 'pkd_fpn_fcos_x101_retina_r50_1x_coco.py'), tmp_path / 'pkd')
    assert sorted(os.listdir(tmp_path / 'pkd')) == [
        'pkd_fpn_faster-rcnn_r101_faster-rcnn_r50_2x_coco.py', 'pkd_fpn_fcos_x101_retina_r50_1x_coco.py',
        'pkd_fpn_retina_x101_retina_r50_2x_coco.py']


def test_cifar_test_mode_gets_the_test_split(tmp_path):
    src = write(tmp_path / 'crd.py', "dataset_type = 'CIFAR10'\n"
                "train = dict(type=dataset_type, data_prefix='data/cifar10', test_mode=False)\n"
                "test = dict(type=dataset_type, data_prefix='data/cifar10/', test_mode=True)\n"
                "other = dict(type='ImageNet', data_prefix='x', test_mode=True)\n")
    run_converter(src, tmp_path / 'out.py')
    namespace = {}
    exec(read(tmp_path / 'out.py'), namespace)
    assert 'split' not in namespace['train'] and 'split' not in namespace['other']
    assert namespace['test'] == dict(type='CIFAR10', data_prefix='data/cifar10/', split='test', test_mode=True)


def test_losses_whose_mapping_the_child_deletes_are_dropped(tmp_path):
    """The factor-transfer train config keeps its pretrain base's loss_s4_pretrain without a mapping."""
    folder = osp.join(ZOO, 'mmcls', 'factor_transfer')
    run_converter(folder, tmp_path / 'ft')
    child = read(tmp_path / 'ft' / 'factor-transfer_backbone_resnet50_resnet18_8xb16_cifar10_train.py')
    assert "distill_losses=dict(_delete_=True, loss_s4=dict(type='FTLoss', loss_weight=1.0))" in child
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'ft' / 'factor-transfer_backbone_resnet50_resnet18_8xb16_cifar10_train.py'))
    assert set(cfg.model.distiller.distill_losses) == set(cfg.model.distiller.loss_forward_mappings) == {'loss_s4'}


def test_a_mapped_data_samples_argument_is_removed_for_losses_that_receive_them(tmp_path):
    """CRD maps the batch's data samples through a recorder on the model's inputs; mmdistkd's distiller hands them
    to CRDLoss (takes_data_samples) and refuses both at once."""
    run_converter(osp.join(ZOO, 'mmcls', 'crd'), tmp_path / 'crd')
    from mmengine.config import Config
    cfg = Config.fromfile(str(tmp_path / 'crd' / 'crd_neck_r50_r18_8xb16_cifar10.py'))
    assert set(cfg.model.distiller.loss_forward_mappings.loss_crd) == {'s_feats', 't_feats'}


def test_find_unused_parameters_is_kept_or_added(tmp_path):
    frozen = "model = dict(_scope_='mmrazor', type='SingleTeacherDistill', calculate_student_loss=False)\n"
    run_converter(write(tmp_path / 'frozen.py', frozen), tmp_path / 'frozen_out.py')
    assert read(tmp_path / 'frozen_out.py').rstrip().endswith('find_unused_parameters = True')
    kept = frozen + 'find_unused_parameters = True  # MMRazor\n'
    run_converter(write(tmp_path / 'kept.py', kept), tmp_path / 'kept_out.py')
    assert read(tmp_path / 'kept_out.py').count('find_unused_parameters') == 1
    plain = "model = dict(_scope_='mmrazor', type='SingleTeacherDistill')\n"
    run_converter(write(tmp_path / 'plain.py', plain), tmp_path / 'plain_out.py')
    assert 'find_unused_parameters' not in read(tmp_path / 'plain_out.py')


def test_custom_imports_is_added_once(tmp_path):
    run_converter(write(tmp_path / 'a.py', MMRAZOR_CONFIG), tmp_path / 'once.py')
    run_converter(tmp_path / 'once.py', tmp_path / 'twice.py')
    assert read(tmp_path / 'twice.py') == read(tmp_path / 'once.py')
    assert read(tmp_path / 'once.py').count('custom_imports') == 1
    # A file without any mmdistkd type needs no import.
    run_converter(write(tmp_path / 'data.py', "pipeline = [dict(type='PackClsInputs')]\n"), tmp_path / 'd.py')
    assert read(tmp_path / 'd.py') == "pipeline = [dict(type='PackInputs')]\n"


def test_the_report_names_each_change_per_file(tmp_path):
    result = run_converter(write(tmp_path / 'src' / 'kd.py', MMRAZOR_CONFIG), tmp_path / 'out.py')
    lines = result.stdout.splitlines()
    assert lines[0] == f'{tmp_path / "src" / "kd.py"} -> {tmp_path / "out.py"}'
    assert "  line 2: 'mmcls::_base_/datasets/imagenet_bs32.py' -> 'mmpretrain::_base_/datasets/imagenet_bs32.py'" \
        in lines
    assert "  line 6: 'mmrazor' -> 'mmdistkd'" in lines
    assert "  line 8: 'mmrazor.DeiTClsHead' -> 'mmdistkd.DeiTClsHead'" in lines
    assert '  line 4: custom_imports of mmdistkd added' in lines
    assert lines[-1] == f'1 config(s) written under {tmp_path / "out.py"}'
    notes = run_converter(osp.join(ZOO, 'mmcls', 'crd', 'crd_neck_r50_r18_8xb16_cifar10.py'), tmp_path / 'crd.py')
    assert "  note: teacher_ckpt 'resnet50_b16x8_cifar10_20210528-f54bfad9.pth' is a local file" in notes.stdout


def test_unresolved_paths_are_an_error_listing_each(tmp_path):
    src = write(tmp_path / 'bad.py', "_base_ = ['mmdet::nowhere/retina.py', './missing_base.py']\n"
                "model = dict(teacher=dict(cfg_path='mmcls::resnet/resnet18_8xb32_in1k.py'))\n")
    result = run_converter(src, tmp_path / 'out.py', check=False)
    assert result.returncode == 1 and not (tmp_path / 'out.py').exists()
    assert "unresolved config path 'mmdet::nowhere/retina.py': no such config in mmdet 3.3.0" in result.stderr
    assert f"unresolved config path './missing_base.py': {tmp_path / 'missing_base.py'} does not exist" \
        in result.stderr
    assert 'Traceback' not in result.stderr
    # The whole zoo: only mmdet3d's config (mmdet3d is not installed) is refused, the rest is written.
    zoo = run_converter('--mmrazor-zoo', tmp_path / 'zoo', check=False)
    assert zoo.returncode == 1
    assert zoo.stderr.count('unresolved config path') == 2 and "'mmdet3d::fcos3d/" in zoo.stderr
    assert '1 config(s) not converted' in zoo.stderr and 'mmdet3d is not installed' in zoo.stderr


def test_rename_tables_match_the_installed_registries():
    import mmpretrain.datasets  # noqa: F401  (registers the transforms)
    import mmpretrain.models  # noqa: F401
    import mmpretrain.visualization  # noqa: F401
    from mmpretrain.registry import MODELS, TRANSFORMS, VISUALIZERS
    registries = (MODELS, TRANSFORMS, VISUALIZERS)
    for old, new in tool.MMCLS_TYPE_RENAMES.items():
        assert not any(registry.get(old) for registry in registries), old
        assert any(registry.get(new) for registry in registries), new


# ---------------------------------------------------------------------------------------------- the zoo, converted

@pytest.fixture(scope='module')
def converted_zoo(tmp_path_factory):
    out = tmp_path_factory.mktemp('converted_zoo')
    run_converter('--mmrazor-zoo', out, '--exclude', 'mmdet3d/*')
    return out


def test_the_converted_zoo_names_no_mmrazor_or_mmcls_and_only_existing_configs(converted_zoo):
    assert len(ZOO_CONFIGS) == 31
    for folder, _, names in os.walk(converted_zoo):
        for name in names:
            path = osp.join(folder, name)
            for value in string_literals(read(path)):
                assert value not in ('mmrazor', 'mmcls') and not value.startswith(('mmrazor', 'mmcls')), (path, value)
                if '::' in value:
                    package, rel_path = value.split('::')
                    assert osp.isfile(osp.join(tool.installed_configs(package), rel_path)), (path, value)


# ---------------------------------------------------------------------------------------------- one step each

CIFAR_FILES = {
    'CIFAR10': ('cifar-10-batches-py', [f'data_batch_{i}' for i in range(1, 6)], ['test_batch'], 'batches.meta',
                'label_names', 'labels', 10),
    'CIFAR100': ('cifar-100-python', ['train'], ['test'], 'meta', 'fine_label_names', 'fine_labels', 100),
}
DET_CLASSES = '[rectangle,ellipse,triangle]'
# Input sizes that keep every step to seconds on a CPU.
PIPELINE_SIZES = {
    'cls': {'RandomResizedCrop': {'scale': '64'}, 'ResizeEdge': {'scale': '72'}, 'CenterCrop': {'crop_size': '64'}},
    'det': {'Resize': {'scale': '(128,128)'}},
    'seg': {'RandomResize': {'scale': '(256,128)'}, 'RandomCrop': {'crop_size': '(64,128)'},
            'Resize': {'scale': '(256,128)'}},
}
SEG_CROP = '(64,128)'
TASK_OF_DATASET = {'ImageNet': 'cls', 'CIFAR10': 'cifar', 'CIFAR100': 'cifar', 'CocoDataset': 'det',
                   'CityscapesDataset': 'seg'}
LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def md5(path):
    with open(path, 'rb') as file:
        return hashlib.md5(file.read()).hexdigest()


def make_cifar(root, name, images_per_file=3):
    """A CIFAR stand-in in the python-pickle layout mmpretrain reads; returns the checksums of its files."""
    folder, train, test, meta, class_key, label_key, num_classes = CIFAR_FILES[name]
    os.makedirs(osp.join(root, folder))
    rng = np.random.default_rng(len(name))
    checksums = {}
    for file_name in train + test:
        batch = {'data': rng.integers(0, 256, (images_per_file, 3 * 32 * 32), dtype=np.uint8),
                 label_key: [int(label) for label in rng.integers(0, num_classes, images_per_file)]}
        with open(osp.join(root, folder, file_name), 'wb') as file:
            pickle.dump(batch, file)
        checksums[file_name] = md5(osp.join(root, folder, file_name))
    with open(osp.join(root, folder, meta), 'wb') as file:
        pickle.dump({class_key: [f'class_{i}' for i in range(num_classes)]}, file)
    checksums[meta] = md5(osp.join(root, folder, meta))
    return checksums


def make_imagenet(root, class_folders):
    """ImageNet's layout (train/, val/ of class folders and meta/<split>.txt) over the demo classification images."""
    os.makedirs(osp.join(root, 'meta'))
    for split in ('train', 'val'):
        shutil.copytree(osp.join(class_folders, split), osp.join(root, split))
        classes = sorted(os.listdir(osp.join(root, split)))
        with open(osp.join(root, 'meta', f'{split}.txt'), 'w') as file:
            for label, name in enumerate(classes):
                for image in sorted(os.listdir(osp.join(root, split, name))):
                    file.write(f'{name}/{image} {label}\n')


@pytest.fixture(scope='module')
def stand_in_data(tmp_path_factory):
    from mmdistkd.analysis.demo_data import generate_demo_data
    root = tmp_path_factory.mktemp('stand_in_data')
    generate_demo_data(str(root / 'demo'), ('det', 'seg', 'cls'), small=True)
    make_imagenet(root / 'imagenet', root / 'demo' / 'cls')
    checksums = {name: make_cifar(root / name.lower(), name) for name in CIFAR_FILES}
    return dict(root=root, cifar_checksums=checksums)


def innermost_dataset(loader, key):
    """(cfg-options key, dict) of a dataloader's dataset, through wrappers such as CRDDataset."""
    dataset = loader.dataset
    while 'dataset' in dataset and isinstance(dataset.dataset, dict):
        key, dataset = f'{key}.dataset', dataset.dataset
    return key, dataset


def dataset_options(cfg, loader_name, data):
    """--cfg-options pointing a dataloader at the stand-in data of its dataset type, small inputs."""
    loader = cfg.get(loader_name)
    if not loader:
        return []
    root = data['root']
    key, dataset = innermost_dataset(loader, f'{loader_name}.dataset')
    dataset_type = dataset.type.split('.')[-1]
    task = TASK_OF_DATASET[dataset_type]
    options = [f'{loader_name}.num_workers=0', f'{loader_name}.persistent_workers=False']
    split = 'train' if loader_name == 'train_dataloader' else 'val'
    if task == 'cifar':
        # mmcls 1.0rc's form names data_prefix, mmpretrain's data_root.
        location = 'data_prefix' if isinstance(dataset.get('data_prefix'), str) else 'data_root'
        options.append(f'{key}.{location}={root / dataset_type.lower()}')
    elif task == 'cls':
        options.append(f'{key}.data_root={root / "imagenet"}')
    elif task == 'det':
        options += [f'{key}.data_root={root / "demo" / "det"}', f'{key}.ann_file=annotations/instances_{split}.json',
                    f'{key}.data_prefix.img={split}/', f'{key}.metainfo.classes={DET_CLASSES}']
        if loader_name == 'val_dataloader' and 'ann_file' in cfg.get('val_evaluator', {}):
            options.append(f'val_evaluator.ann_file={root / "demo" / "det" / "annotations" / "instances_val.json"}')
    else:
        options.append(f'{key}.data_root={root / "demo" / "seg"}')
    for index, transform in enumerate(dataset.get('pipeline', [])):
        for name, value in PIPELINE_SIZES.get(task, {}).get(transform['type'].split('.')[-1], {}).items():
            options.append(f'{key}.pipeline.{index}.{name}={value}')
    return options


def pretrained_weights(node, path):
    """cfg-options keys under ``path`` that turn off every pretrained-weight download in a model config: init_cfg
    of type Pretrained, backbones' ``pretrained=True`` (timm) or checkpoint paths."""
    options = []
    if isinstance(node, dict):
        init_cfg = node.get('init_cfg')
        inits = init_cfg if isinstance(init_cfg, (list, tuple)) else [init_cfg]
        if any(isinstance(init, dict) and init.get('type') == 'Pretrained' for init in inits):
            options.append(f'{path}.init_cfg=None')
        if node.get('pretrained') is True or isinstance(node.get('pretrained'), str):
            options.append(f'{path}.pretrained={None if isinstance(node["pretrained"], str) else False}')
        for key, value in node.items():
            if key != 'init_cfg':
                options += pretrained_weights(value, f'{path}.{key}')
    return options


def submodel_options(sub, path):
    """Weights off in a student or teacher given as a model dict or as cfg_path plus overrides (merged as
    mmdistkd builds it), and mmseg's padding to the full crop size shrunk."""
    from mmengine.config import Config

    from mmdistkd.models.algorithms.submodel import load_model_config
    model = sub
    if 'cfg_path' in sub:
        loaded, _ = load_model_config(sub.cfg_path)
        merged = Config(dict(model=loaded))
        merged.merge_from_dict({f'model.{key}': value for key, value in sub.items()
                                if key not in ('cfg_path', 'pretrained')})
        model = merged.model
    # Beside cfg_path, `pretrained` is MMRazor's switch for the model zoo's weights; a model's own (mmseg's
    # EncoderDecoder) names its backbone's ImageNet checkpoint.
    options = [f'{path}.pretrained={None if isinstance(model.get("pretrained"), str) else False}'] \
        if 'pretrained' in sub or isinstance(model.get('pretrained'), str) else []
    if model.get('data_preprocessor', {}).get('size') is not None:
        options.append(f'{path}.data_preprocessor.size={SEG_CROP}')
    return options + pretrained_weights({key: value for key, value in model.items() if key != 'pretrained'}, path)


def model_options(cfg):
    model = cfg.model
    options = ['model.teacher_ckpt=None'] if 'teacher_ckpt' in model else []
    options += pretrained_weights({'init_cfg': model.get('init_cfg')}, 'model')
    for role in ('architecture', 'teacher'):
        if isinstance(model.get(role), dict):
            options += submodel_options(model[role], f'model.{role}')
    for name, teacher in model.get('teachers', {}).items():
        options.append(f'model.teachers.{name}.ckpt_path=None')
        options += submodel_options(teacher.build_cfg, f'model.teachers.{name}.build_cfg')
    return options


def step_options(config, data, name):
    """The --cfg-options for one training step of a converted config on the stand-in data."""
    from mmengine.config import Config

    from mmdistkd.utils.config_paths import anchor_cfg_paths
    cfg = anchor_cfg_paths(Config.fromfile(config), config)
    # A ViT student (DeiT-base) takes a batch of one; BN layers of the others need two.
    vit = 'VisionTransformer' in str(cfg.model.get('architecture', {}).get('backbone', {}).get('type'))
    # The validation loop is built (its type must resolve) but does not run. No learning-rate schedule: a
    # schedule starting after a warm-up (begin=5000) does not fit a run of one iteration.
    options = ['train_cfg._delete_=True', 'train_cfg.type=IterBasedTrainLoop', 'train_cfg.max_iters=1',
               'train_cfg.val_begin=2', 'param_scheduler=None', 'default_hooks.logger.interval=1',
               'default_hooks.checkpoint=None', 'log_processor.by_epoch=False',
               f'train_dataloader.batch_size={1 if vit else 2}',
               # mmdet's visualizer is named 'visualizer': one instance per process unless each run names its
               # own, and it writes the run's log where it was created.
               f'visualizer.name={name.replace("/", "__")}',
               'val_dataloader.batch_size=1']
    for loader in LOADERS:
        options += dataset_options(cfg, loader, data)
    return options + model_options(cfg)


def drive(manifest_path):
    """Runs tools/train.py's main once per entry of the manifest in this process; writes each outcome (and the
    first line of an error) to the manifest's results file as it goes."""
    with open(manifest_path) as file:
        manifest = json.load(file)
    from mmpretrain.datasets import CIFAR10, CIFAR100
    for dataset, checksums in ((CIFAR10, manifest['cifar_checksums']['CIFAR10']),
                               (CIFAR100, manifest['cifar_checksums']['CIFAR100'])):
        dataset.train_list = [[name, checksums[name]] for name, _ in dataset.train_list]
        dataset.test_list = [[name, checksums[name]] for name, _ in dataset.test_list]
        dataset.meta = dict(dataset.meta, md5=checksums[dataset.meta['filename']])
    results = {}
    for step in manifest['steps']:
        sys.argv = ['tools/train.py', step['config'], '--work-dir', step['work_dir'], '--cfg-options',
                    *step['options']]
        start = time.time()
        try:
            runpy.run_path(osp.join(REPO, 'tools', 'train.py'), run_name='__main__')
            results[step['name']] = dict(ok=True)
        except BaseException as error:  # noqa: B036  (SystemExit too: one config's failure ends only its step)
            message = str(error).strip().splitlines()
            results[step['name']] = dict(ok=False, error=f'{type(error).__name__}: {message[0] if message else ""}',
                                         traceback=traceback.format_exc()[-4000:])
        results[step['name']]['seconds'] = round(time.time() - start, 1)
        with open(manifest['results'], 'w') as file:
            json.dump(results, file, indent=1)
        gc.collect()


@pytest.fixture(scope='module')
def zoo_steps(converted_zoo, stand_in_data, tmp_path_factory):
    work = tmp_path_factory.mktemp('zoo_steps')
    steps = []
    for name in ZOO_CONFIGS:
        config = str(converted_zoo / name)
        steps.append(dict(name=name, config=config, work_dir=str(work / name.replace('/', '__')),
                          options=step_options(config, stand_in_data, name)))
    manifest = dict(steps=steps, cifar_checksums=stand_in_data['cifar_checksums'], results=str(work / 'results.json'))
    with open(work / 'manifest.json', 'w') as file:
        json.dump(manifest, file, indent=1)
    driver = f'import sys; sys.path.insert(0, {TESTS + "/tools"!r}); import {__name__.split(".")[-1]} as t; ' \
             f't.drive({str(work / "manifest.json")!r})'
    process = subprocess.run([sys.executable, '-c', driver], cwd=REPO, capture_output=True, text=True,
                             timeout=1200, env=dict(os.environ, PYTHONUNBUFFERED='1'))
    results = json.load(open(manifest['results'])) if osp.exists(manifest['results']) else {}
    return dict(results=results, steps={step['name']: step for step in steps}, process=process)


def logged_scalars(work_dir):
    """The training log's entries (mmengine's vis_data/scalars.json) of a run."""
    runs = [osp.join(work_dir, run, 'vis_data', 'scalars.json') for run in sorted(os.listdir(work_dir))
            if osp.isfile(osp.join(work_dir, run, 'vis_data', 'scalars.json'))]
    assert runs, f'no vis_data/scalars.json under {work_dir}'
    with open(runs[-1]) as file:
        return [json.loads(line) for line in file if line.strip()]


def distill_loss_names(config):
    from mmengine.config import Config
    model = Config.fromfile(config).model
    names = []
    for distiller in ('distiller', 'generator_distiller'):
        names += list(model.get(distiller, {}).get('distill_losses', {}))
    return names


@pytest.mark.parametrize('config', ZOO_CONFIGS)
def test_one_training_step(config, zoo_steps):
    result = zoo_steps['results'].get(config)
    if result is None:
        process = zoo_steps['process']
        pytest.fail(f'the step process ended (exit {process.returncode}) before {config}:\n{process.stderr[-3000:]}')
    if not result['ok']:
        pytest.fail(f'{config}: {result["error"]}\n{result["traceback"]}')
    step = zoo_steps['steps'][config]
    # The optimised totals: 'loss', or one per optimizer of the data-free algorithms ('generator.loss', ...).
    [logged] = [entry for entry in logged_scalars(step['work_dir'])
                if entry.get('step') == 1 and any(key == 'loss' or key.endswith('.loss') for key in entry)]
    totals = [key for key in logged if key == 'loss' or key.endswith('.loss')]
    assert all(math.isfinite(logged[key]) for key in totals), {key: logged[key] for key in totals}
    for name in distill_loss_names(step['config']):
        keys = [key for key in logged if key == name or key.endswith(f'.{name}')]
        assert keys, f'distill loss {name} is not in the logged step: {sorted(logged)}'
        assert all(math.isfinite(logged[key]) for key in keys), {key: logged[key] for key in keys}
