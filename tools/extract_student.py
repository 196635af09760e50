# Writes the student of a distillation checkpoint as a plain mmdet / mmseg / mmpretrain checkpoint
# (no "architecture." prefix, no teacher, no distiller or DPK modules).
import argparse

from mmengine.runner import CheckpointLoader, save_checkpoint

import mmdistkd  # noqa: F401  (safe checkpoint loading)
from mmdistkd.utils.student import student_checkpoint


def main():
    parser = argparse.ArgumentParser(description='Extract the student from an mmdistkd checkpoint')
    parser.add_argument('checkpoint', help='distillation checkpoint (e.g. work_dirs/x/iter_40000.pth)')
    parser.add_argument('out', help='output path of the plain student checkpoint')
    args = parser.parse_args()
    checkpoint = CheckpointLoader.load_checkpoint(args.checkpoint, map_location='cpu')
    try:
        student = student_checkpoint(checkpoint.get('state_dict', checkpoint), checkpoint.get('meta'))
    except ValueError as error:
        raise SystemExit(f'extract_student: {args.checkpoint}: {error}') from None
    save_checkpoint(student, args.out)
    print(f'Student ({len(student["state_dict"])} tensors) written to {args.out}')


if __name__ == '__main__':
    main()
