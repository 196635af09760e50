"""model-index.yml and the metafiles it imports stay true to the repository: every metafile it imports exists,
every model names an existing config and a known collection, every collection's README exists, every config of
configs/dist, configs/dpk, configs/fgd and configs/tolerant is listed, and no model carries Results (nothing has
been run on a real dataset yet: docs/reproduction.md). mmengine's get_config reads this index for mmdistkd::
config paths. Only YAML and the file system: fast."""
import glob
import os.path as osp

import pytest
import yaml

from mmdistkd.testing import REPO

METHOD_FOLDERS = ('dist', 'dpk', 'fgd', 'tolerant')


def load(path):
    with open(osp.join(REPO, path)) as file:
        return yaml.safe_load(file)


INDEX = load('model-index.yml')
METAFILES = INDEX['Import']


def test_index_imports_one_metafile_per_method():
    assert sorted(METAFILES) == sorted(f'configs/{folder}/metafile.yml' for folder in METHOD_FOLDERS)
    for path in METAFILES:
        assert osp.isfile(osp.join(REPO, path)), f'model-index.yml imports {path}, which does not exist'


@pytest.mark.parametrize('metafile', METAFILES)
def test_metafile_points_at_real_files(metafile):
    meta = load(metafile)
    collections = {collection['Name']: collection for collection in meta['Collections']}
    for name, collection in collections.items():
        assert osp.isfile(osp.join(REPO, collection['README'])), f'{metafile}: {name} README missing'
        assert collection['Paper']['URL'] and collection['Paper']['Title'], f'{metafile}: {name} paper'
    for model in meta['Models']:
        assert model['In Collection'] in collections, f'{metafile}: {model["Name"]} in an unknown collection'
        assert osp.isfile(osp.join(REPO, model['Config'])), f'{metafile}: {model["Config"]} does not exist'
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['Metadata']['Training Data']
        # Results only for measured runs; none has been measured on a real dataset yet.
        assert 'Results' not in model, f'{metafile}: {model["Name"]} has Results; measured? update this test'


def test_every_method_config_is_indexed():
    indexed = {model['Config'] for metafile in METAFILES for model in load(metafile)['Models']}
    configs = {osp.relpath(path, REPO) for folder in METHOD_FOLDERS
               for path in glob.glob(osp.join(REPO, 'configs', folder, '*.py'))}
    assert configs - indexed == set(), f'configs missing from the metafiles: {sorted(configs - indexed)}'
