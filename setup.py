import os
import os.path as osp
import shutil
import sys

from setuptools import find_packages, setup

MIM_ENTRIES = ('configs', 'tools', 'model-index.yml')


def read_version():
    scope = {}
    with open(osp.join(osp.dirname(__file__), 'mmdistkd', 'version.py')) as f:
        exec(f.read(), scope)
    return scope['__version__']


def read_requirements(name):
    with open(osp.join(osp.dirname(__file__), 'requirements', name)) as f:
        return [line.strip() for line in f if line.strip() and not line.startswith('#')]


def add_mim_extension():
    """Put configs/, tools/ and model-index.yml in ``mmdistkd/.mim`` so ``mmdistkd::`` config paths resolve (as
    mmdet does): symlinks for a development install (``setup.py develop``), copies in a wheel or sdist."""
    if 'develop' in sys.argv:
        mode = 'symlink'
    elif any(cmd in sys.argv for cmd in ('bdist_wheel', 'sdist', 'build')):
        mode = 'copy'
    else:
        return
    root = osp.dirname(osp.abspath(__file__))
    mim_dir = osp.join(root, 'mmdistkd', '.mim')
    os.makedirs(mim_dir, exist_ok=True)
    for entry in MIM_ENTRIES:
        src, dst = osp.join(root, entry), osp.join(mim_dir, entry)
        if osp.islink(dst) or osp.isfile(dst):
            os.remove(dst)
        elif osp.isdir(dst):
            shutil.rmtree(dst)
        if mode == 'symlink':
            os.symlink(osp.relpath(src, mim_dir), dst)
        else:
            (shutil.copytree if osp.isdir(src) else shutil.copyfile)(src, dst)


add_mim_extension()
setup(
    name='mmdistkd',
    version=read_version(),
    description='Knowledge distillation (DIST, DPK, tolerant teachers) for OpenMMLab: '
    'mmpretrain, mmdet and mmsegmentation',
    long_description=open(osp.join(osp.dirname(__file__), 'README.md')).read()
    if osp.exists(osp.join(osp.dirname(__file__), 'README.md')) else '',
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('configs', 'tools', 'tests')),
    include_package_data=True,
    package_data={'mmdistkd': ['.mim/model-index.yml', '.mim/configs/**/*.py', '.mim/configs/**/*.yml',
                              '.mim/tools/**/*']},
    python_requires='>=3.8',
    install_requires=read_requirements('runtime.txt') + ['mmcv>=2.0.0,<2.2.0'],
    license='Apache License 2.0',
    zip_safe=False,
)
