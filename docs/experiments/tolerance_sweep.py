"""The evidence behind TolerantLoss's defaults (docs/tolerant.md): a cheap sweep of ``eta`` and ``k`` on the
demo classification data (``tools/make_demo_data.py``), in one process on CPU (about a minute of CPU time
per trained model)::

    python docs/experiments/tolerance_sweep.py --settings 1.0:3 0.9:3 0.7:3 0.6:3 0.5:3 0.7:2 0.7:5 \
        --students 1.0:3 0.9:3 0.7:3 0.5:3

Each ``eta:k`` setting trains a teacher with ``TolerantLoss(CrossEntropyLoss, eta, k)`` (``eta = 1`` is the
strict teacher) and reports its val accuracy and the statistics of ``tools/analysis/teacher_tolerance.py``
over the val images (mean top-1 probability, secondary mass over ranks 2..``--stats-k``, entropy). Each
``--students`` setting then trains one generation-1 student from that teacher with ``0.5 * CE + 0.5 * KL``
(temperature 1, ``KLDivergence``), the generation-students' loss.

The demo configs' ResNets learn this data only after hundreds of iterations (too slow for a sweep on a
shared CPU), so the model here is a small CNN (three 3x3 conv-BN-ReLU layers of 16/32/64 channels, global
pooling, a linear classifier) on the images held in memory, with 4-pixel padded random crops (one offset per
batch, padded with the mean colour; the demo configs themselves train without augmentation). Every run
starts from the same initialisation and sees the same batches, so settings differ only by their loss; one
seed, so accuracy differences of a few points (200 val images) are noise.
"""
import argparse
import glob
import os.path as osp
import time

import cv2
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.registry import DefaultScope

import mmdistkd  # noqa: F401  (registers the losses)
from mmdistkd.analysis.tolerance import ToleranceMeter
from mmdistkd.models.losses.kd import KLDivergence
from mmdistkd.models.losses.tolerant import TolerantLoss

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
# The demo classification config's normalisation (one grey level for the three channels).
_PREPROCESSOR = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'datasets', 'demo_cls.py')).data_preprocessor
MEAN, STD = _PREPROCESSOR.mean[0], _PREPROCESSOR.std[0]


def load_split(data_root, split):
    """Images ``(N, 3, 32, 32)`` normalised as the demo config does, and labels (class folders, sorted)."""
    classes = sorted(osp.basename(d) for d in glob.glob(osp.join(data_root, split, '*')))
    images, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted(glob.glob(osp.join(data_root, split, name, '*.png'))):
            images.append(cv2.imread(path)[..., ::-1])  # BGR -> RGB, as the config's to_rgb
            labels.append(label)
    if not images:
        raise SystemExit(f'no images under {osp.join(data_root, split)}: run tools/make_demo_data.py')
    images = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()
    return (images - MEAN) / STD, torch.tensor(labels)


def small_cnn(num_classes):
    def conv(in_channels, out_channels):
        return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
                             nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))

    return nn.Sequential(conv(3, 16), nn.MaxPool2d(2), conv(16, 32), nn.MaxPool2d(2), conv(32, 64),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, num_classes))


def random_crops(images, generator, padding=4):
    """``RandomCrop(32, padding=4)`` with one offset per batch; zero padding is the mean colour after
    normalisation."""
    size = images.shape[-1]
    dy, dx = torch.randint(0, 2 * padding + 1, (2, ), generator=generator).tolist()
    return F.pad(images, (padding, ) * 4)[..., dy:dy + size, dx:dx + size]


def train(loss_fn, data, args, teacher=None):
    """A small CNN trained with ``loss_fn(logits, labels, teacher_logits)``; the same initialisation and
    batches for every call (``args.seed``)."""
    torch.manual_seed(args.seed)
    model = small_cnn(args.num_classes)
    generator = torch.Generator().manual_seed(args.seed)
    images, labels = data['train']
    steps_per_epoch = len(images) // args.batch_size
    optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, args.lr, total_steps=args.epochs * steps_per_epoch,
                                                    pct_start=0.1)
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(images), generator=generator)
        for step in range(steps_per_epoch):
            batch = order[step * args.batch_size:(step + 1) * args.batch_size]
            inputs = random_crops(images[batch], generator)
            teacher_logits = None
            if teacher is not None:
                with torch.no_grad():
                    teacher_logits = teacher(inputs)
            loss = loss_fn(model(inputs), labels[batch], teacher_logits)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return model.eval()


@torch.no_grad()
def evaluate(model, data, stats_k):
    images, labels = data['val']
    logits = model(images)
    meter = ToleranceMeter(stats_k)
    meter.update(logits.softmax(dim=-1))
    return dict(accuracy=100 * (logits.argmax(dim=-1) == labels).float().mean().item(), **meter.means())


def parse_setting(text):
    eta, k = text.split(':')
    return float(eta), int(k)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--settings', nargs='+', type=parse_setting, required=True, help='teachers as eta:k')
    parser.add_argument('--students', nargs='*', type=parse_setting, default=[],
                        help='eta:k settings (among --settings) to distill a generation-1 student from')
    parser.add_argument('--data-root', default=osp.join(REPO, 'data', 'demo', 'cls'))
    parser.add_argument('--epochs', type=int, default=20)
    parser.add_argument('--batch-size', type=int, default=32)
    parser.add_argument('--lr', type=float, default=0.05)
    parser.add_argument('--stats-k', type=int, default=3, help='secondary mass over ranks 2..stats-k')
    parser.add_argument('--student-loss-weight', type=float, default=0.5, help='lambda of the students')
    parser.add_argument('--seed', type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(min(torch.get_num_threads(), 2))
    data = dict(train=load_split(args.data_root, 'train'), val=load_split(args.data_root, 'val'))
    args.num_classes = int(data['train'][1].max()) + 1

    lines = [f'| teacher (eta, k) | student of it | val acc | top-1 prob | secondary (2..{args.stats_k}) | '
             'entropy | seconds |', '|' + ' --- |' * 7]
    teachers = {}
    # base_loss types resolve in mmpretrain's registry, as under an mmpretrain config's default scope
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        for eta, k in args.settings:
            tolerant = TolerantLoss(dict(type='CrossEntropyLoss', loss_weight=1.0), eta=eta, k=k)
            start = time.time()
            # as mmpretrain's ClsHead calls its loss module
            teachers[eta, k] = train(lambda logits, labels, _: tolerant(logits, labels, avg_factor=labels.numel()),
                                     data, args)
            stats = evaluate(teachers[eta, k], data, args.stats_k)
            lines.append(format_row(f'{eta}, {k}', '', stats, time.time() - start))
            print(lines[-1], flush=True)

    kd = KLDivergence(tau=1.0, loss_weight=1 - args.student_loss_weight)
    for eta, k in args.students:
        start = time.time()
        student = train(lambda logits, labels, teacher_logits: args.student_loss_weight * F.cross_entropy(
            logits, labels) + kd(logits, teacher_logits), data, args, teacher=teachers[eta, k])
        lines.append(format_row(f'{eta}, {k}', 'generation 1', evaluate(student, data, args.stats_k),
                                time.time() - start))
        print(lines[-1], flush=True)
    print('\n' + '\n'.join(lines))


def format_row(teacher, student, stats, seconds):
    return (f'| {teacher} | {student} | {stats["accuracy"]:.1f} | {stats["top1"]:.3f} | {stats["secondary"]:.3f} | '
            f'{stats["entropy"]:.3f} | {seconds:.0f} |')


if __name__ == '__main__':
    main()
