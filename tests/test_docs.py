"""The documentation holds together: every page under docs/ is linked from docs/index.md, and every relative link
in the README, the docs and the config READMEs names a file or folder that exists."""
import glob
import os.path as osp
import re

import pytest

from mmdistkd.testing import REPO

# [text](target) with a relative target: no scheme, no pure #anchor.
LINK = re.compile(r'\[[^\]]*\]\((?![a-z]+:|#)([^)\s#]+)(?:#[^)]*)?\)')
PAGES = sorted(glob.glob(osp.join(REPO, 'docs', '**', '*.md'), recursive=True))
MARKDOWN = [osp.join(REPO, 'README.md'), *PAGES, *sorted(glob.glob(osp.join(REPO, 'configs', '*', 'README.md')))]


def links(path):
    with open(path, encoding='utf-8') as f:
        return LINK.findall(f.read())


def test_every_doc_page_is_linked_from_the_index():
    index = osp.join(REPO, 'docs', 'index.md')
    linked = {osp.normpath(osp.join(osp.dirname(index), target)) for target in links(index)}
    unlinked = [osp.relpath(page, REPO) for page in PAGES if page != index and page not in linked]
    assert not unlinked, f'link these pages from docs/index.md: {unlinked}'


@pytest.mark.parametrize('path', MARKDOWN, ids=[osp.relpath(p, REPO) for p in MARKDOWN])
def test_relative_links_resolve(path):
    missing = [target for target in links(path) if not osp.exists(osp.join(osp.dirname(path), target))]
    assert not missing, f'{osp.relpath(path, REPO)} links to missing files: {missing}'
