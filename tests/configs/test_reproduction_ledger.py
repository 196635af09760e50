"""docs/reproduction.md, the reproduction ledger, cannot rot: every config it names exists and builds (with
``teacher_ckpt=None``, under the config's default scope), every row of its published-number tables names a
config or says why there is none, the OpenMMLab teacher checkpoint a row names is the one its config loads, and
every config in configs/dist, configs/dpk and configs/tolerant is named in a published row or in the ledger's
"Configs that are not a published row" section. Models are only built here; test_method_configs.py trains
them for one training step."""
import glob
import os.path as osp
import re

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401
from mmdistkd.analysis.configs import is_distill_config
from mmdistkd.registry import MODELS
from mmdistkd.testing import REPO

LEDGER = osp.join(REPO, 'docs', 'reproduction.md')
NOT_PUBLISHED_HEADING = '## Configs that are not a published row'
METHOD_FOLDERS = ('dist', 'dpk', 'tolerant')
# A config named in the ledger: a markdown link relative to docs/.
CONFIG_LINK = re.compile(r'\]\(\.\./(configs/[^)\s]+\.py)\)')
TEACHER_URL = re.compile(r'\((https://download\.openmmlab\.com/[^)\s]+\.pth)\)')
SEPARATOR_ROW = re.compile(r'\|( *:?-+:? *\|)+')


def read_ledger():
    with open(LEDGER) as file:
        published, heading, not_published = file.read().partition(NOT_PUBLISHED_HEADING)
    return published, heading, not_published


def table_rows(text):
    """The data rows of every markdown table in ``text``, each as its list of cells, with the header's cells."""
    lines = text.splitlines()
    rows = []
    for index, line in enumerate(lines):
        if SEPARATOR_ROW.fullmatch(line.strip()):
            header = cells(lines[index - 1])
            for row in lines[index + 1:]:
                if not row.startswith('|'):
                    break
                rows.append((header, cells(row)))
    return rows


def cells(row):
    return [cell.strip() for cell in row.strip().strip('|').split('|')]


PUBLISHED, HEADING, NOT_PUBLISHED = read_ledger()
PUBLISHED_ROWS = table_rows(PUBLISHED)
NAMED_CONFIGS = sorted(set(CONFIG_LINK.findall(PUBLISHED + NOT_PUBLISHED)))
METHOD_CONFIGS = sorted(osp.relpath(path, REPO) for folder in METHOD_FOLDERS
                        for path in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))


# The published results named in issue 14 and in the papers (DIST: ImageNet, COCO, Cityscapes, CIFAR-100; DPK:
# CIFAR-100), as (teacher -> student cell, published cell ends with).
ISSUE_ROWS = [
    ('ResNet-34 (73.31) -> ResNet-18', '72.07'), ('ResNet-50 (76.16) -> MobileNetV1', '73.24'),
    ('ResNet-50-SB (80.1) -> ResNet-18', '74.5'),
    ('RetinaNet X101-64x4d 1x (41.0) -> RetinaNet R50', '39.8'),
    ('Cascade Mask R-CNN X101-64x4d (45.6) -> Faster R-CNN R50', '40.4'),
    ('DeepLabV3-R101 (78.07) -> DeepLabV3-R18', '77.10'), ('DeepLabV3-R101 (78.07) -> PSPNet-R18', '76.31'),
    ('WRN-40-2 (75.61) -> WRN-40-1', '74.43 +- 0.24'), ('ResNet-56 (72.34) -> ResNet-20', '71.75 +- 0.30'),
    ('ResNet-32x4 (79.42) -> ResNet-8x4', '76.31 +- 0.19'), ('ResNet-50 (79.34) -> MobileNetV2', '68.66 +- 0.23'),
    ('ResNet-32x4 (79.42) -> ShuffleNetV1', '76.34 +- 0.18'), ('ResNet-32x4 (79.42) -> ShuffleNetV2', '77.35 +- 0.25'),
    ('ResNet-110 -> ResNet-20', '72.44'), ('ResNet-110 -> ResNet-32', '74.89'), ('WRN-40-2 -> WRN-40-1', '75.27'),
    ('WRN-40-2 -> WRN-16-2', '76.42'), ('VGG-13 -> VGG-8', '74.96'), ('WRN-40-2 -> ShuffleNetV1', '74.43'),
    ('ResNet-32x4 -> ShuffleNetV1', '76.00'), ('VGG-13 -> MobileNetV2', '68.63'),
]


def test_ledger_has_a_not_published_section():
    assert HEADING and NOT_PUBLISHED.strip(), f'docs/reproduction.md needs a "{NOT_PUBLISHED_HEADING}" section'


@pytest.mark.parametrize('pair, published', ISSUE_ROWS, ids=[pair for pair, _ in ISSUE_ROWS])
def test_every_published_number_has_a_row(pair, published):
    assert any(row[0] == pair and row[1].endswith(published) for _, row in PUBLISHED_ROWS), \
        f'docs/reproduction.md has no row "{pair}" with the published {published}'


@pytest.mark.parametrize('row', [row for _, row in PUBLISHED_ROWS], ids=lambda row: row[0])
def test_published_row_names_a_config_or_says_why_not(row):
    text = ' | '.join(row)
    assert CONFIG_LINK.search(text) or 'pending' in text or 'no config yet' in text, \
        f'link the config that targets this row, or say "pending" / "no config yet" and why: {text}'


def test_published_rows_are_complete():
    for header, row in PUBLISHED_ROWS:
        assert len(row) == len(header), f'{len(row)} cells under a {len(header)}-column header: {row}'
        assert header[-1] == 'ours' and row[-1], f'every row ends with what we measured ("not run" if nothing): {row}'


@pytest.mark.parametrize('config', METHOD_CONFIGS)
def test_every_method_config_is_in_the_ledger(config):
    in_published_rows = {link for _, row in PUBLISHED_ROWS for link in CONFIG_LINK.findall(' | '.join(row))}
    in_not_published = set(CONFIG_LINK.findall(NOT_PUBLISHED))
    assert config in in_published_rows | in_not_published, \
        f'{config}: name it in docs/reproduction.md, in the row it targets or under "{NOT_PUBLISHED_HEADING}"'


@pytest.mark.parametrize('config', NAMED_CONFIGS)
def test_named_config_exists(config):
    assert osp.isfile(osp.join(REPO, config)), f'docs/reproduction.md names {config}, which does not exist'


@pytest.mark.parametrize('config', [c for c in NAMED_CONFIGS if c.split('/')[1] in METHOD_FOLDERS])
def test_named_config_builds(config):
    cfg = Config.fromfile(osp.join(REPO, config))
    distills = is_distill_config(cfg)
    if distills:
        cfg.model.teacher_ckpt = None
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        model = MODELS.build(cfg.model)
    if distills:
        assert model.distiller.distill_losses and not any(p.requires_grad for p in model.teacher.parameters())
    else:
        assert any(p.requires_grad for p in model.parameters())


def targets_with_teacher_url(row):
    """A row whose config targets it (not "pending" on a stand-in) and which names an OpenMMLab teacher file."""
    text = ' | '.join(row)
    return bool(CONFIG_LINK.search(text) and TEACHER_URL.search(text)) and 'pending' not in text


@pytest.mark.parametrize('row', [row for _, row in PUBLISHED_ROWS if targets_with_teacher_url(row)],
                         ids=lambda row: row[0])
def test_row_teacher_checkpoint_is_the_configs(row):
    """The OpenMMLab teacher checkpoint a row names is the one its config loads."""
    text = ' | '.join(row)
    config = CONFIG_LINK.search(text).group(1)
    teacher_ckpt = Config.fromfile(osp.join(REPO, config)).model.teacher_ckpt
    assert teacher_ckpt in TEACHER_URL.findall(text), f'{config} loads {teacher_ckpt}, the ledger names another'
