"""``import mmdistkd`` costs a classification run nothing of mmdet: mmdet is imported only where a detector needs it
(a fresh interpreter, as the test process has imported mmdet already)."""
import sys

from mmdistkd.testing import run_tool

IMPORT_WITH_MMPRETRAIN_ALONE = """
import sys, mmdistkd; import mmpretrain
print('mmdet.models imported:', 'mmdet.models' in sys.modules)
from mmdistkd.registry import MODELS
print('registered:', all(name in MODELS.module_dict for name in ('SingleTeacherDistill', 'DISTLoss')))
print('built:', type(MODELS.build(dict(type='DISTLoss'))).__name__)
"""


def test_import_with_mmpretrain_alone_does_not_import_mmdet_models():
    lines = run_tool([sys.executable, '-c', IMPORT_WITH_MMPRETRAIN_ALONE]).stdout.splitlines()
    assert lines == ['mmdet.models imported: False', 'registered: True', 'built: DISTLoss']
