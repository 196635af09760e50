"""The demo behind ``make demo``: on the bundled data, train a teacher, then a student distilled from it,
and print the val metrics of each (TASK=det|seg|cls; det by default).

Each stage runs ``tools/train.py`` (mmengine's progress output included); finished stages are reused.
"""
import argparse
import glob
import os
import os.path as osp
import subprocess
import sys

from mmdistkd.utils.run_logs import last_val_metrics

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))

TASKS = {
    'det': dict(metric='coco/bbox_mAP',
                teacher='configs/demo/retinanet_r34_demo_det_teacher.py',
                runs=dict(student='configs/demo/retinanet_r18_demo_det_student.py',
                          kd='configs/demo/kd_retinanet_r34_r18_demo_det.py')),
    'seg': dict(metric='mIoU',
                teacher='configs/demo/deeplabv3_r34_demo_seg_teacher.py',
                runs=dict(student='configs/demo/deeplabv3_r18_demo_seg_student.py',
                          kd='configs/demo/kd_deeplabv3_r34_r18_demo_seg.py')),
    'cls': dict(metric='accuracy/top1',
                teacher='configs/demo/resnet34_demo_cls_teacher.py',
                runs=dict(student='configs/demo/resnet18_demo_cls_student.py',
                          kd='configs/demo/kd_resnet34_resnet18_demo_cls.py')),
}


def announce(text):
    print(f'\n=== {text}', flush=True)


def train(config, work_dir, extra=()):
    """Runs tools/train.py unless ``work_dir`` already holds a finished run; returns its final checkpoint."""
    final = osp.join(work_dir, 'final.pth')
    if osp.exists(final):
        print(f'(reusing {final})')
        return final
    subprocess.run([sys.executable, osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir,
                    *extra], cwd=REPO, check=True)
    checkpoints = sorted(glob.glob(osp.join(work_dir, 'iter_*.pth')),
                         key=lambda p: int(osp.basename(p)[5:-4]))
    if not checkpoints:
        raise RuntimeError(f'{config} wrote no checkpoint to {work_dir}')
    os.replace(checkpoints[-1], final)
    return final


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--task', choices=sorted(TASKS), default='det')
    parser.add_argument('--work-dir', default=osp.join(REPO, 'work_dirs', 'demo'))
    parser.add_argument('--cfg-options', nargs='*', default=[],
                        help='key=value overrides for every stage (e.g. train_cfg.max_iters=20)')
    args = parser.parse_args()
    task = TASKS[args.task]
    work_dir = osp.join(args.work_dir, args.task)
    extra = ['--cfg-options', *args.cfg_options] if args.cfg_options else []

    announce('demo data (data/demo)')
    if not osp.isdir(osp.join(REPO, 'data', 'demo', args.task)):
        subprocess.run([sys.executable, osp.join(REPO, 'tools', 'make_demo_data.py'), '--out',
                        osp.join(REPO, 'data', 'demo')], check=True)

    announce(f'teacher: {task["teacher"]}')
    teacher_ckpt = train(task['teacher'], osp.join(work_dir, 'teacher'), extra)
    results = {'teacher': last_val_metrics(osp.join(work_dir, 'teacher'))}
    for name, config in task['runs'].items():
        announce(f'{name}: {config}')
        run_extra = list(extra)
        if name != 'student':
            run_extra = ['--cfg-options', f'model.teacher_ckpt={teacher_ckpt}', *args.cfg_options]
        train(config, osp.join(work_dir, name), run_extra)
        results[name] = last_val_metrics(osp.join(work_dir, name))

    announce(f'val {task["metric"]} on the demo {args.task} data')
    for name, metrics in results.items():
        value = metrics.get(task['metric'])
        print(f'{name:>10}: {value if value is not None else "n/a"}')
    print(f'\nLogs and checkpoints: {work_dir}')


if __name__ == '__main__':
    main()
