# Converts a CRD-benchmark CIFAR checkpoint (HobbitLong/RepDistiller, e.g. its teachers'
# ckpt_epoch_240.pth) into an mmpretrain ImageClassifier checkpoint of mmdistkd's CIFAR backbones
# ("backbone." and "head.fc." keys), loadable as a distillation config's teacher_ckpt:
#   python tools/model_converters/crd_to_mmpretrain.py ckpt_epoch_240.pth cifar100_wrn_40_2.pth --arch wrn_40_2
import argparse
import pickle

import torch
from mmengine.runner import save_checkpoint

from mmdistkd.models.backbones import CRD_ARCHS, crd_model_state_dict, crd_to_mmpretrain


def main():
    parser = argparse.ArgumentParser(description='Convert a CRD-benchmark (RepDistiller) CIFAR checkpoint into '
                                     'an mmpretrain checkpoint of the mmdistkd CIFAR backbones')
    parser.add_argument('src', help='CRD checkpoint, e.g. save/models/wrn_40_2_vanilla/ckpt_epoch_240.pth')
    parser.add_argument('dst', help='output mmpretrain checkpoint')
    parser.add_argument('--arch', required=True, choices=list(CRD_ARCHS),
                        help='the CRD model name the checkpoint was trained as (RepDistiller --model)')
    args = parser.parse_args()
    try:
        # Weights only: no code in the file runs. RepDistiller's *_last.pth also pickles its argparse options
        # and does not load this way; its ckpt_epoch_*.pth and *_best.pth files do.
        checkpoint = torch.load(args.src, map_location='cpu', weights_only=True)
    except pickle.UnpicklingError as error:
        raise SystemExit(f'crd_to_mmpretrain: {args.src} holds more than weights and was not loaded ({error}). '
                         'Convert a ckpt_epoch_*.pth or *_best.pth file instead.') from None
    try:
        state_dict = crd_to_mmpretrain(crd_model_state_dict(checkpoint), args.arch)
    except ValueError as error:
        raise SystemExit(f'crd_to_mmpretrain: {args.src}: {error}') from None
    save_checkpoint({'meta': {'crd_arch': args.arch}, 'state_dict': state_dict}, args.dst)
    print(f'{args.arch}: {len(state_dict)} tensors written to {args.dst}')


if __name__ == '__main__':
    main()
