"""The launch scripts (tools/dist_train.sh, dist_test.sh, slurm_train.sh) build the command lines they should
and run the project's environment (.venv) unless PYTHON names another interpreter. They run from a copy of
tools/ in a temporary checkout whose interpreters and srun are stand-ins that record their arguments."""
import glob
import os
import os.path as osp
import shutil
import subprocess

import pytest

from mmdistkd.testing import REPO

RECORDER = '''#!/usr/bin/env bash
echo "$0 PYTHONPATH=$PYTHONPATH" >> "$LAUNCH_LOG"
printf '%s\\n' "$@" >> "$LAUNCH_LOG"
'''
EXTRA_ARGS = ['--cfg-options', 'a=1', 'b=two words']


def install_recorder(path):
    os.makedirs(osp.dirname(path), exist_ok=True)
    with open(path, 'w') as file:
        file.write(RECORDER)
    os.chmod(path, 0o755)


@pytest.fixture
def checkout(tmp_path):
    """A checkout with the launch scripts, a stand-in .venv/bin/python, and srun and python on PATH."""
    root = tmp_path / 'checkout'
    (root / 'tools').mkdir(parents=True)
    for script in glob.glob(osp.join(REPO, 'tools', '*.sh')):
        shutil.copy(script, root / 'tools')
    install_recorder(root / '.venv' / 'bin' / 'python')
    install_recorder(tmp_path / 'bin' / 'srun')
    install_recorder(tmp_path / 'bin' / 'python')
    return root


def launch(checkout, script, *args, **env):
    """Runs ``tools/<script>`` from outside the checkout; returns the program it ran (a recorder's path), the first
    entry of its PYTHONPATH and its arguments."""
    log = checkout.parent / 'launch.log'
    full_env = {key: value for key, value in os.environ.items() if key not in ('PYTHON', 'SRUN_ARGS', 'PORT')}
    full_env.update(PATH=f'{checkout.parent / "bin"}{os.pathsep}{os.environ["PATH"]}', LAUNCH_LOG=str(log), **env)
    subprocess.run(['bash', str(checkout / 'tools' / script), *args], cwd=checkout.parent, env=full_env, check=True,
                   capture_output=True)
    header, *arguments = log.read_text().splitlines()
    program, pythonpath = header.split(' PYTHONPATH=')
    return program, pythonpath.split(os.pathsep)[0], arguments


def test_slurm_train_srun_command_line(checkout):
    program, pythonpath, args = launch(checkout, 'slurm_train.sh', 'gpu', 'kd-run', 'configs/dist/x.py', 'work_dirs/x',
                                       *EXTRA_ARGS, GPUS='16', GPUS_PER_NODE='8', SRUN_ARGS='--qos=high --time=60')
    assert (program, pythonpath) == (str(checkout.parent / 'bin' / 'srun'), str(checkout))
    assert args == ['-p', 'gpu', '--job-name=kd-run', '--gres=gpu:8', '--ntasks=16', '--ntasks-per-node=8',
                    '--cpus-per-task=5', '--kill-on-bad-exit=1', '--qos=high', '--time=60',
                    str(checkout / '.venv' / 'bin' / 'python'), '-u', str(checkout / 'tools' / 'train.py'),
                    'configs/dist/x.py', '--work-dir=work_dirs/x', '--launcher=slurm', *EXTRA_ARGS]


@pytest.mark.parametrize('script, args, tool', [('dist_train.sh', ['x.py', '2'], ['train.py', 'x.py']),
                                                ('dist_test.sh', ['x.py', 'x.pth', '2'], ['test.py', 'x.py', 'x.pth'])])
def test_dist_scripts_run_torch_distributed_in_the_projects_environment(checkout, script, args, tool):
    program, pythonpath, recorded = launch(checkout, script, *args, *EXTRA_ARGS, PORT='29601')
    assert (program, pythonpath) == (str(checkout / '.venv' / 'bin' / 'python'), str(checkout))
    assert recorded == ['-m', 'torch.distributed.run', '--nnodes=1', '--node_rank=0', '--master_addr=127.0.0.1',
                        '--nproc_per_node=2', '--master_port=29601', str(checkout / 'tools' / tool[0]), *tool[1:],
                        '--launcher', 'pytorch', *EXTRA_ARGS]


@pytest.mark.parametrize('script', ['dist_train.sh', 'slurm_train.sh'])
def test_python_chosen_by_the_user_or_from_path_without_a_venv(checkout, script):
    args = ['x.py', '2'] if script == 'dist_train.sh' else ['gpu', 'job', 'x.py', 'work_dirs/x']

    def python_run(**env):
        program, _, recorded = launch(checkout, script, *args, **env)
        (checkout.parent / 'launch.log').unlink()
        return program if script == 'dist_train.sh' else recorded[recorded.index('-u') - 1]

    chosen = checkout.parent / 'elsewhere' / 'python3'
    install_recorder(chosen)
    assert python_run(PYTHON=str(chosen)) == str(chosen)
    shutil.rmtree(checkout / '.venv')
    # slurm passes the name on to srun; bash finds the stand-in on PATH
    assert python_run() == ('python' if script == 'slurm_train.sh' else str(checkout.parent / 'bin' / 'python'))
