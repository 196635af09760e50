"""tools/generations.py: a tolerant teacher and 2 student generations of the demo classification pair end to
end on CPU, its table and plot, resuming without retraining, and the --strict walk over a config."""
import csv
import glob
import json
import os.path as osp

import pytest

from mmdistkd.analysis.generations import Generations, parse_options, strict_overrides
from mmdistkd.analysis.stages import StageError
from mmdistkd.testing import REPO, run_tool
from mmdistkd.utils.launch import load_config

TEACHER = 'configs/demo/tolerant_resnet34_demo_cls_teacher.py'
STUDENT = 'configs/demo/gen_resnet34_demo_cls.py'
# 2 iterations of 2 images, validation on 8 images, no dataloader worker processes: seconds per generation.
FAST = ['--cfg-options', 'train_cfg.max_iters=2', 'train_cfg.val_interval=2', 'train_dataloader.batch_size=2',
        'train_dataloader.num_workers=0', 'val_dataloader.num_workers=0', 'val_dataloader.dataset.indices=8',
        'default_hooks.logger.interval=1']


def test_two_generations_end_to_end_then_resume_skips_them(demo_data, tmp_path, capsys):
    work_dir = tmp_path / 'chain'
    command = ['tools/generations.py', TEACHER, STUDENT, '--generations', '2', '--work-dir', str(work_dir)] + FAST
    run_tool(command)

    records = [json.loads((work_dir / f'gen{g}' / 'stage.json').read_text()) for g in range(3)]
    assert records[0]['checkpoint'] == str(work_dir / 'gen0' / 'iter_2.pth')  # the teacher's last checkpoint
    # generation 1 learns from the teacher's checkpoint, generation 2 from generation 1's exported student
    handed_on = [records[0]['checkpoint'], str(work_dir / 'gen1' / 'student_final.pth')]
    for generation in (1, 2):
        record, previous = records[generation], records[generation - 1]
        assert record['options'][-1] == f'model.teacher_ckpt={handed_on[generation - 1]}'
        # the teacher this generation evaluated is the previous generation's model
        assert record['teacher_metrics'] == previous['metrics']

    with open(work_dir / 'generations.csv') as file:
        rows = list(csv.DictReader(file))
    assert [row['generation'] for row in rows] == ['0', '1', '2']
    assert [float(row['accuracy/top1']) for row in rows] == [r['metrics']['accuracy/top1'] for r in records]
    table = (work_dir / 'generations.md').read_text()
    assert '| 0 | tolerant teacher |' in table and '| 2 | student of gen 1 |' in table
    assert (work_dir / 'generations.png').read_bytes().startswith(b'\x89PNG')

    # Run again (in this process: the command's own code, without another interpreter start).
    runs_before = sorted(glob.glob(str(work_dir / 'gen*' / '2*')))  # one timestamped folder per training run
    chain = Generations(osp.join(REPO, TEACHER), osp.join(REPO, STUDENT), work_dir, cfg_options=FAST[1:])
    assert chain.run(2) == records
    assert capsys.readouterr().out.count('(done before: ') == 3
    assert sorted(glob.glob(str(work_dir / 'gen*' / '2*'))) == runs_before, 'nothing was trained again'

    # the finished teacher was tolerant: a strict chain in this work dir is refused, not mixed in
    with pytest.raises(StageError, match=r'gen0/stage.json is a finished run .* asked now: .*eta=1\.0'):
        Generations(osp.join(REPO, TEACHER), osp.join(REPO, STUDENT), work_dir, strict=True,
                    cfg_options=FAST[1:]).run(2)


def test_strict_walks_every_tolerant_loss_of_a_config():
    cfg = dict(model=dict(
        decode_head=dict(loss_decode=[dict(type='mmdistkd.TolerantLoss', eta=0.6),
                                      dict(type='DiceLoss')]),
        auxiliary_head=[dict(loss_decode=dict(type='TolerantLoss', base_loss=dict(type='CrossEntropyLoss')))]))
    assert strict_overrides(cfg) == ['model.decode_head.loss_decode.0.eta=1.0',
                                     'model.auxiliary_head.0.loss_decode.eta=1.0']

    # the options it makes set eta = 1 on both heads of a real config
    config = osp.join(REPO, 'configs', 'demo', 'tolerant_deeplabv3_r34_demo_seg_teacher.py')
    options = strict_overrides(load_config(config).to_dict())
    assert options == ['model.decode_head.loss_decode.eta=1.0', 'model.auxiliary_head.loss_decode.eta=1.0']
    strict = load_config(config, parse_options(options))
    assert strict.model.decode_head.loss_decode.eta == strict.model.auxiliary_head.loss_decode.eta == 1.0
