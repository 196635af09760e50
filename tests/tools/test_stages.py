"""The stages runner behind tools/demo.py and tools/generations.py (mmdistkd.analysis.stages), with a stand-in
for tools/train.py that leaves what mmengine leaves in a work dir: finished stages are skipped, unfinished
ones resume, side-by-side output is prefixed, a work dir of another run is refused."""
import json
import sys

import pytest

from mmdistkd.analysis.stages import Stage, StageError, run_stages, train_command

# Records its arguments in calls.txt, writes a checkpoint (and last_checkpoint), then either dies (if the
# work dir holds a file named fail_once, which it removes) or logs a training and a validation record.
FAKE_TRAIN = '''
import argparse, json, os, sys
parser = argparse.ArgumentParser()
parser.add_argument('config')
parser.add_argument('--work-dir')
parser.add_argument('--resume', nargs='?', const='auto')
parser.add_argument('--cfg-options', nargs='+', default=[])
args = parser.parse_args()
options = dict(option.split('=', 1) for option in args.cfg_options)
os.makedirs(args.work_dir, exist_ok=True)
with open(os.path.join(args.work_dir, 'calls.txt'), 'a') as file:
    file.write(' '.join(sys.argv[1:]) + '\\n')
print('training', os.path.basename(args.config))
checkpoint = os.path.join(args.work_dir, 'iter_1.pth')
open(checkpoint, 'w').close()
with open(os.path.join(args.work_dir, 'last_checkpoint'), 'w') as file:
    file.write(checkpoint)
if os.path.exists(os.path.join(args.work_dir, 'fail_once')):
    os.remove(os.path.join(args.work_dir, 'fail_once'))
    sys.exit(3)
runs = [name for name in os.listdir(args.work_dir) if name.startswith('run_')]
vis_data = os.path.join(args.work_dir, f'run_{len(runs)}', 'vis_data')
os.makedirs(vis_data)
records = [dict(loss=1.0, lr=0.1, step=1)]
if options.get('validate', '1') == '1':
    records.append({'accuracy/top1': float(options['accuracy']), 'teacher.accuracy/top1': 60.0, 'step': 1})
with open(os.path.join(vis_data, 'scalars.json'), 'w') as file:
    file.writelines(json.dumps(record) + '\\n' for record in records)
'''


@pytest.fixture
def fake_train(tmp_path):
    script = tmp_path / 'fake_train.py'
    script.write_text(FAKE_TRAIN)
    return str(script)


def calls(stage):
    with open(f'{stage.work_dir}/calls.txt') as file:
        return file.read().splitlines()


def test_finished_stages_are_skipped_and_unfinished_ones_resume(tmp_path, fake_train, capsys):
    config = str(tmp_path / 'model.py')
    done = Stage('done', config, str(tmp_path / 'done'), ('accuracy=10.0', ))
    broken = Stage('broken', config, str(tmp_path / 'broken'), ('accuracy=20.0', ))
    (tmp_path / 'broken').mkdir()
    (tmp_path / 'broken' / 'fail_once').touch()

    with pytest.raises(StageError, match=r'broken \(.*model.py\) exited 3'):
        run_stages([done, broken], jobs=2, train_script=fake_train)
    output = capsys.readouterr().out
    # side by side: each run's lines carry its name
    assert '[done] training model.py' in output and '[broken] training model.py' in output
    record = json.loads((tmp_path / 'done' / 'stage.json').read_text())
    assert record == dict(config=config, options=['accuracy=10.0'], checkpoint=str(tmp_path / 'done' / 'iter_1.pth'),
                          metrics={'accuracy/top1': 10.0}, teacher_metrics={'accuracy/top1': 60.0})
    assert not (tmp_path / 'broken' / 'stage.json').exists()
    assert calls(broken) == [f'{config} --work-dir {broken.work_dir} --cfg-options accuracy=20.0']

    records = run_stages([done, broken], jobs=2, train_script=fake_train)
    assert records[0] == record and records[1]['metrics'] == {'accuracy/top1': 20.0}
    assert f'(done before: {done.marker})' in capsys.readouterr().out
    assert len(calls(done)) == 1, 'the finished stage was not trained again'
    assert calls(broken)[1] == f'{config} --work-dir {broken.work_dir} --resume --cfg-options accuracy=20.0'

    # both finished: nothing runs
    assert run_stages([done, broken], train_script=fake_train) == records
    assert (len(calls(done)), len(calls(broken))) == (1, 2)


def test_a_work_dir_of_another_run_is_refused_before_anything_trains(tmp_path, fake_train):
    first = Stage('first', str(tmp_path / 'model.py'), str(tmp_path / 'run'), ('accuracy=10.0', ))
    run_stages([first], train_script=fake_train)
    other = Stage('other', str(tmp_path / 'model.py'), str(tmp_path / 'other'), ('accuracy=30.0', ))
    changed = Stage('changed', first.config, first.work_dir, ('accuracy=20.0', ))
    with pytest.raises(StageError, match=r"run/stage.json is a finished run of .*model.py with --cfg-options "
                                         r"\['accuracy=10.0'\]; asked now: .*model.py with \['accuracy=20.0'\]"):
        run_stages([other, changed], train_script=fake_train)
    assert not (tmp_path / 'other').exists()
    assert len(calls(first)) == 1


def test_a_run_without_validation_is_an_error(tmp_path, fake_train):
    stage = Stage('silent', str(tmp_path / 'model.py'), str(tmp_path / 'silent'), ('validate=0', ))
    with pytest.raises(StageError, match='logged no validation metrics .* needs a val_dataloader and val_cfg'):
        run_stages([stage], train_script=fake_train)
    assert not (tmp_path / 'silent' / 'stage.json').exists()


def test_distributed_stages_launch_as_dist_train_does(tmp_path, monkeypatch):
    monkeypatch.setenv('PORT', '29601')
    stage = Stage('ddp', str(tmp_path / 'model.py'), str(tmp_path / 'ddp'), ('a=1', ))
    assert train_command(stage, 'train.py', processes=2) == [
        sys.executable, '-m', 'torch.distributed.run', '--nproc_per_node=2', '--master_port=29601', 'train.py',
        stage.config, '--work-dir', stage.work_dir, '--launcher', 'pytorch', '--cfg-options', 'a=1']
    with pytest.raises(ValueError, match='one at a time'):
        run_stages([stage, stage], jobs=2, processes=2, train_script='train.py')
