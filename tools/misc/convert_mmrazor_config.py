"""Rewrite MMRazor 1.0 distillation configs for mmdistkd and today's OpenMMLab packages, keeping their comments
and layout, and print what changed in each file.

    python tools/misc/convert_mmrazor_config.py SRC DST [--exclude GLOB ...]
    python tools/misc/convert_mmrazor_config.py --mmrazor-zoo DST --exclude 'mmdet3d/*'

SRC is one config file or a folder (every ``*.py`` below it, converted to the same place under the folder DST);
``--mmrazor-zoo`` takes MMRazor's own distillation configs from the installed ``mmrazor`` wheel (found through its
package metadata; mmrazor is never imported). What it rewrites (docs/migrating_from_mmrazor.md has the table):

- ``'mmrazor'`` scopes and ``mmrazor.X`` types -> ``mmdistkd``; ``'mmcls'`` / ``mmcls.X`` -> ``mmpretrain``, with the
  mmcls 1.0rc type names mmpretrain 1.x renamed (``PackClsInputs`` -> ``PackInputs``);
- ``mmcls::`` / ``mmdet::`` / ``mmseg::`` config paths, checked against the installed packages' configs and mapped
  to the file as named today (``faster_rcnn_r50_fpn_1x_coco.py`` -> ``faster-rcnn_r50_fpn_1x_coco.py``); a path
  found nowhere is an error listing every such path (the file is not written);
- ``mmrazor::`` paths and relative paths to configs outside SRC (BYOT's ``../../../_base_/...``): that config is
  converted too and written beside the file that names it, and the path becomes ``./<its name>``, so the folder
  holds everything the config needs (copy the folder, not one file);
- adds ``custom_imports = dict(imports=['mmdistkd'], ...)`` to every file that names an mmdistkd type;
- CIFAR datasets in mmcls 1.0rc's form (``data_prefix=..., test_mode=True``) get ``split='test'``: mmpretrain 1.x
  would read the training set for them;
- a mapping of a loss's ``data_samples`` through a recorder (CRD) is removed: mmdistkd's distiller hands the batch's
  data samples to the losses that take them;
- a child config that deletes its base's ``loss_forward_mappings`` (``_delete_=True``) also drops the losses it
  inherits without a mapping (``distill_losses=dict(_delete_=True, ...)``): mmdistkd refuses a loss without one;
- ``find_unused_parameters = True`` is kept, and added where the model leaves trainable parameters without
  gradients (``calculate_student_loss=False`` or ``student_trainable=False``).

It also prints notes on what it leaves to you (a ``teacher_ckpt`` that is a local file, mmdet 2.x's
``optimizer_config``). Exit status 1 when a file could not be converted.
"""
import argparse
import ast
import fnmatch
import importlib.metadata
import importlib.util
import io
import os
import os.path as osp
import re
import sys
import tokenize
from dataclasses import dataclass, field

# MMRazor's distillation configs inside its wheel.
ZOO_CONFIGS = 'mmrazor/.mim/configs'
ZOO_DISTILL = ZOO_CONFIGS + '/distill'
# The package a ``pkg::`` config path or a registry scope names today.
PACKAGE_TODAY = {'mmcls': 'mmpretrain', 'mmpretrain': 'mmpretrain', 'mmdet': 'mmdet', 'mmseg': 'mmseg',
                 'mmdet3d': 'mmdet3d', 'mmengine': 'mmengine'}
# mmcls 1.0rc type names that mmpretrain 1.x renamed (every other mmcls type the zoo names kept its name).
MMCLS_TYPE_RENAMES = {'PackClsInputs': 'PackInputs', 'ClsVisualizer': 'UniversalVisualizer'}
# Config files renamed upstream whose new name the separator rule of ``normalised_name`` does not find.
CONFIG_RENAMES = {}
CIFAR_TYPES = ('CIFAR10', 'CIFAR100')
CUSTOM_IMPORTS = "custom_imports = dict(imports=['mmdistkd'], allow_failed_imports=False)"
IDENTIFIER = r'[A-Za-z_]\w*'


class ConversionError(Exception):
    """A config that cannot be converted; ``problems`` lists why (one line each)."""

    def __init__(self, path, problems):
        super().__init__(f'{path}: ' + '; '.join(problems))
        self.path, self.problems = path, problems


@dataclass
class FileReport:
    src: str
    dst: str
    changes: list = field(default_factory=list)  # (line, what)
    notes: list = field(default_factory=list)

    def lines(self):
        yield f'{self.src} -> {self.dst}'
        for line, what in sorted(self.changes, key=lambda change: change[0]):
            yield f'  line {line}: {what}'
        for note in self.notes:
            yield f'  note: {note}'


def mmrazor_zoo(subdir=ZOO_DISTILL):
    """The folder of MMRazor's configs in the installed ``mmrazor`` wheel, located through its package metadata
    (importing mmrazor fails on current PyTorch)."""
    try:
        path = importlib.metadata.distribution('mmrazor').locate_file(subdir)
    except importlib.metadata.PackageNotFoundError:
        raise SystemExit('mmrazor is not installed: `pip install mmrazor==1.0.0 --no-deps` puts its configs in '
                         'place (it is never imported), or give SRC') from None
    return str(path)


def installed_configs(package):
    """The ``.mim/configs`` folder of an installed OpenMMLab package, or None; found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return osp.join(list(spec.submodule_search_locations)[0], '.mim', 'configs')


def normalised_name(name):
    """mmdet 3.x / mmpretrain 1.x renamed config files by separators (``faster_rcnn`` -> ``faster-rcnn``) and
    dropped mmcls's ``pt-`` ("from scratch") tag (``deit-base_pt-16xb64`` -> ``deit-base_16xb64``)."""
    return name.lower().replace('_pt-', '_').replace('_', '-')


def resolve_package_path(value):
    """(today's ``pkg::path``, None) for an upstream config path, or (None, why) when no installed file fits."""
    scope, rel_path = value.split('::', 1)
    package = PACKAGE_TODAY.get(scope)
    root = installed_configs(package) if package else None
    if root is None:
        return None, f'{value!r}: {package or scope} is not installed'
    rel_path = CONFIG_RENAMES.get(f'{scope}::{rel_path}', rel_path)
    if osp.isfile(osp.join(root, rel_path)):
        return f'{package}::{rel_path}', None
    folder, name = osp.split(rel_path)
    candidates = sorted(candidate for candidate in os.listdir(osp.join(root, folder))
                        if normalised_name(candidate) == normalised_name(name)) \
        if osp.isdir(osp.join(root, folder)) else []
    if len(candidates) == 1:
        return f'{package}::{osp.join(folder, candidates[0])}', None
    return None, f'{value!r}: no such config in {package} {importlib.metadata.version(package_dist(package))}' + (
        f' (several fit: {candidates})' if candidates else '')


def package_dist(package):
    return {'mmseg': 'mmsegmentation'}.get(package, package)


def local_config_path(value):
    """Whether a string literal is a relative path to a local config file (``_base_`` entries, ``cfg_path``)."""
    return value.endswith('.py') and '::' not in value and '://' not in value and not osp.isabs(value)


class Converter:
    """Converts a set of config files (``tree``: source path -> destination path), plus the configs outside it that
    they name (written beside the file that names them)."""

    def __init__(self, tree):
        self.tree = dict(tree)
        self.written = {}  # destination -> source, to refuse two sources on one destination
        self.reports, self.errors = [], []

    def run(self):
        for src, dst in self.tree.items():
            self.convert_file(src, dst)
        return self.reports, self.errors

    def convert_file(self, src, dst):
        """Converts and writes one file (once); returns whether it was written."""
        if dst in self.written:
            if self.written[dst] != src:
                self.errors.append(ConversionError(src, [f'{dst} is also the conversion of {self.written[dst]}']))
            return self.written[dst] == src and osp.isfile(dst)
        self.written[dst] = src
        try:
            text, report = FileConversion(self, src, dst).convert()
        except ConversionError as error:
            self.errors.append(error)
            return False
        os.makedirs(osp.dirname(dst) or '.', exist_ok=True)
        with open(dst, 'w', encoding='utf-8') as file:
            file.write(text)
        self.reports.append(report)
        return True

    def dependency(self, src_path, naming_dst):
        """Converts ``src_path`` (a config outside the tree) beside ``naming_dst``; returns its new path there, or
        None when it could not be converted."""
        dst = osp.join(osp.dirname(naming_dst), osp.basename(src_path))
        return dst if self.convert_file(src_path, dst) else None


class FileConversion:
    """One file: string literals rewritten where they sit (``tokenize`` positions), statements inserted by ``ast``
    positions; the rest of the text is kept."""

    def __init__(self, converter, src, dst):
        self.converter, self.src, self.dst = converter, src, dst
        with open(src, encoding='utf-8') as file:
            self.text = file.read()
        self.lines = self.text.splitlines(keepends=True)
        self.line_starts = [0]
        for line in self.lines:
            self.line_starts.append(self.line_starts[-1] + len(line))
        self.tree = ast.parse(self.text, filename=src)
        self.report = FileReport(src, dst)
        self.edits = []  # (start, end, new text)
        self.problems = []

    # ------------------------------------------------------------------ positions
    def offset(self, line, col, col_in_bytes=False):
        if col_in_bytes:
            col = len(self.lines[line - 1].encode('utf-8')[:col].decode('utf-8'))
        return self.line_starts[line - 1] + col

    def node_start(self, node):
        return self.offset(node.lineno, node.col_offset, col_in_bytes=True)

    def change(self, line, what):
        self.report.changes.append((line, what))

    # ------------------------------------------------------------------ the conversion
    def convert(self):
        self.rewrite_strings()
        self.add_cifar_test_split()
        self.delete_unmapped_inherited_losses()
        self.drop_data_samples_mappings()
        self.add_find_unused_parameters()
        self.add_custom_imports()
        self.collect_notes()
        if self.problems:
            raise ConversionError(self.src, self.problems)
        text = self.text
        for start, end, new in sorted(self.edits, key=lambda edit: (edit[0], edit[1]), reverse=True):
            text = text[:start] + new + text[end:]
        return text, self.report

    def rewrite_strings(self):
        tokens = tokenize.generate_tokens(io.StringIO(self.text).readline)
        for token in tokens:
            if token.type != tokenize.STRING or re.match(r'^[A-Za-z]*[fF]', token.string):
                continue
            prefix = re.match(r'^[A-Za-z]*', token.string).group()
            value = ast.literal_eval(token.string)
            if not isinstance(value, str):
                continue
            new_value = self.rewrite_value(value, token.start[0])
            if new_value is not None and new_value != value:
                quote = token.string[len(prefix)]
                if quote in new_value or '\\' in new_value:
                    new_token = prefix + repr(new_value)
                else:
                    new_token = f'{prefix}{quote}{new_value}{quote}'
                start = self.offset(*token.start)
                self.edits.append((start, self.offset(*token.end), new_token))
                self.change(token.start[0], f'{value!r} -> {new_value!r}')

    def rewrite_value(self, value, line):
        if value == 'mmrazor':
            return 'mmdistkd'
        if value == 'mmcls':
            return 'mmpretrain'
        match = re.fullmatch(rf'(mmrazor|mmcls)\.({IDENTIFIER})', value)
        if match:
            scope, name = match.groups()
            if scope == 'mmrazor':
                return f'mmdistkd.{name}'
            return f'mmpretrain.{MMCLS_TYPE_RENAMES.get(name, name)}'
        if value in MMCLS_TYPE_RENAMES:
            return MMCLS_TYPE_RENAMES[value]
        if re.fullmatch(rf'{IDENTIFIER}::\S+\.py', value):
            scope = value.split('::', 1)[0]
            if scope == 'mmrazor':
                return self.outside_config(osp.join(mmrazor_zoo(ZOO_CONFIGS), value.split('::', 1)[1]), value)
            if scope in ('mmdistkd', 'mmengine'):
                return None
            new_value, problem = resolve_package_path(value)
            if problem:
                self.problems.append(f'line {line}: unresolved config path {problem}')
            return new_value
        if local_config_path(value):
            src_path = osp.normpath(osp.join(osp.dirname(self.src), value))
            if src_path in self.converter.tree:
                # Inside the converted tree: the same relative path holds at the destination.
                return None
            return self.outside_config(src_path, value)
        return None

    def outside_config(self, src_path, value):
        """A config outside the converted tree: converted beside this file; the new relative path to it."""
        if not osp.isfile(src_path):
            self.problems.append(f'unresolved config path {value!r}: {src_path} does not exist')
            return None
        dst = self.converter.dependency(src_path, self.dst)
        if dst is None:
            self.problems.append(f'{value!r} names {src_path}, which could not be converted')
            return None
        relative = osp.relpath(dst, osp.dirname(self.dst))
        if relative in (value, f'./{value}') or f'./{relative}' == value:
            return None
        return relative if relative.startswith('.') else f'./{relative}'

    # ------------------------------------------------------------------ structural changes
    def calls(self):
        return [node for node in ast.walk(self.tree) if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name) and node.func.id == 'dict']

    def module_strings(self):
        """Module-level ``name = 'string'`` assignments (``dataset_type = 'CIFAR10'``)."""
        return {target.id: node.value.value for node in self.tree.body if isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                for target in node.targets if isinstance(target, ast.Name)}

    def keyword_value(self, call, name, names=None):
        for keyword in call.keywords:
            if keyword.arg == name:
                value = keyword.value
                if isinstance(value, ast.Name) and names is not None:
                    return names.get(value.id)
                return value.value if isinstance(value, ast.Constant) else value
        return None

    def add_cifar_test_split(self):
        """mmcls 1.0rc read CIFAR's test set for ``test_mode=True``; mmpretrain 1.x reads ``split`` (default
        'train', with a warning only)."""
        names = self.module_strings()
        for call in self.calls():
            keywords = {keyword.arg: keyword for keyword in call.keywords}
            if (self.keyword_value(call, 'type', names) in CIFAR_TYPES and 'split' not in keywords
                    and 'data_prefix' in keywords and self.keyword_value(call, 'test_mode') is True):
                self.edits.append((self.node_start(keywords['test_mode']),) * 2 + ("split='test', ",))
                self.change(keywords['test_mode'].lineno,
                            "split='test' added: mmpretrain 1.x reads the training set for test_mode=True")

    def delete_unmapped_inherited_losses(self):
        mappings = self.find_call('loss_forward_mappings')
        if mappings is None or self.keyword_value(mappings, '_delete_') is not True:
            return
        losses = self.find_call('distill_losses')
        mapped = {keyword.arg for keyword in mappings.keywords if keyword.arg != '_delete_'}
        inherited = set()
        for base in self.local_bases(self.src):
            inherited |= set(distill_loss_names(base))
        orphans = sorted(inherited - mapped)
        if not orphans or (losses is not None and self.keyword_value(losses, '_delete_') is True):
            return
        own = {keyword.arg for keyword in losses.keywords} if losses is not None else set()
        if losses is None or mapped - own:
            self.report.notes.append(
                f'this file deletes the base\'s loss_forward_mappings, which leaves the inherited losses {orphans} '
                'without a mapping (an error in mmdistkd); redefine distill_losses with _delete_=True')
            return
        self.edits.append((self.node_start(losses) + len('dict('),) * 2 + ('_delete_=True, ',))
        self.change(losses.lineno, f'distill_losses: _delete_=True drops {", ".join(orphans)}, inherited from '
                                   'the base, whose mapping this file deletes (mmdistkd refuses a loss without one)')

    def drop_data_samples_mappings(self):
        """MMRazor hands a loss the batch's data samples through a recorder on the whole model's inputs (CRD's
        ``data_samples=dict(recorder='data_samples', data_idx=1)``); mmdistkd's distiller passes them to every loss
        that declares ``takes_data_samples`` and refuses a mapping of them as well."""
        mappings, losses = self.find_call('loss_forward_mappings'), self.find_call('distill_losses')
        if mappings is None or losses is None:
            return
        names = self.module_strings()
        for loss in losses.keywords:
            mapping = next((kw.value for kw in mappings.keywords if kw.arg == loss.arg), None)
            data_samples = next((kw for kw in getattr(mapping, 'keywords', []) if kw.arg == 'data_samples'), None)
            loss_type = self.keyword_value(loss.value, 'type', names) if isinstance(loss.value, ast.Call) else None
            if data_samples is None or not takes_data_samples(loss_type):
                continue
            start = self.node_start(data_samples)
            end = self.offset(data_samples.end_lineno, data_samples.end_col_offset, col_in_bytes=True)
            # The comma and space before it, so that the call stays well formed.
            before = self.text[:start].rstrip()
            if before.endswith(','):
                start = len(before) - 1
            self.edits.append((start, end, ''))
            self.change(data_samples.lineno, f'loss_forward_mappings.{loss.arg}.data_samples removed: mmdistkd '
                                             f'passes the batch\'s data samples to {loss_type} itself')

    def find_call(self, keyword_name):
        """The ``dict(...)`` given as ``keyword_name=`` anywhere in the file, or None."""
        for call in self.calls():
            for keyword in call.keywords:
                if keyword.arg == keyword_name and isinstance(keyword.value, ast.Call):
                    return keyword.value
        return None

    def local_bases(self, path):
        """Every local config ``path`` inherits (depth first), read from the source tree."""
        for base in base_paths(path):
            if local_config_path(base):
                base_path = osp.normpath(osp.join(osp.dirname(path), base))
                if osp.isfile(base_path):
                    yield base_path
                    yield from self.local_bases(base_path)

    def add_find_unused_parameters(self):
        freezes = any(self.keyword_value(call, key) is False for call in self.calls()
                      for key in ('calculate_student_loss', 'student_trainable'))
        chain = [self.src, *self.local_bases(self.src)]
        if freezes and not any('find_unused_parameters' in assigned_names(path) for path in chain):
            self.edits.append((len(self.text),) * 2 + (
                '\n# Trainable parameters without gradients (no student loss or a frozen student): DDP must '
                'allow them.\nfind_unused_parameters = True\n',))
            self.change(len(self.lines), 'find_unused_parameters = True added: the model leaves trainable '
                                         'parameters without gradients')

    def add_custom_imports(self):
        converted = self.text
        for start, end, new in self.edits:
            converted += new
        if 'mmdistkd' not in converted or 'custom_imports' in assigned_names(self.src):
            return
        base = next((node for node in self.tree.body if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == '_base_' for target in node.targets)), None)
        if base is None:
            first = self.tree.body[0] if self.tree.body else None
            at, line = (self.node_start(first), first.lineno) if first is not None else (len(self.text), 1)
            self.edits.append((at, at, CUSTOM_IMPORTS + '\n\n'))
        else:
            line = base.end_lineno
            self.edits.append((self.line_starts[line],) * 2 + (CUSTOM_IMPORTS + '\n',))
        self.change(line, 'custom_imports of mmdistkd added')

    # ------------------------------------------------------------------ what is left to the user
    def collect_notes(self):
        names = self.module_strings()
        notes = self.report.notes
        for call in self.calls():
            ckpt = self.keyword_value(call, 'teacher_ckpt', names)
            if isinstance(ckpt, str) and '://' not in ckpt:
                notes.append(f'teacher_ckpt {ckpt!r} is a local file (MMRazor left its download to you): '
                             'point teacher_ckpt at it (mmdistkd refuses a missing file at build)')
        if 'optimizer_config' in assigned_names(self.src):
            notes.append('optimizer_config is an mmdet 2.x key that mmengine ignores (as it did under MMRazor): '
                         'clip gradients with optim_wrapper.clip_grad')


def takes_data_samples(loss_type):
    """Whether the mmdistkd loss registered as ``loss_type`` receives the batch's data samples from the distiller."""
    if not isinstance(loss_type, str):
        return False
    import mmdistkd.models  # noqa: F401  (registers the losses)
    from mmdistkd.registry import MODELS
    loss_cls = MODELS.get(loss_type.split('.', 1)[-1])
    return bool(getattr(loss_cls, 'takes_data_samples', False))


def base_paths(path):
    """The ``_base_`` entries of a config file, read without running it."""
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read(), filename=path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == '_base_' for t in node.targets):
            values = node.value.elts if isinstance(node.value, (ast.List, ast.Tuple)) else [node.value]
            return [value.value for value in values if isinstance(value, ast.Constant)]
    return []


def assigned_names(path):
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read(), filename=path)
    return {target.id for node in tree.body if isinstance(node, ast.Assign) for target in node.targets
            if isinstance(target, ast.Name)}


def distill_loss_names(path):
    """The keys of every ``distill_losses=dict(...)`` in a config file, read without running it."""
    with open(path, encoding='utf-8') as file:
        tree = ast.parse(file.read(), filename=path)
    return [keyword.arg for node in ast.walk(tree) if isinstance(node, ast.keyword) and node.arg == 'distill_losses'
            and isinstance(node.value, ast.Call) for keyword in node.value.keywords if keyword.arg != '_delete_']


def conversion_tree(src, dst, excludes=()):
    """Source file -> destination file for SRC (a file or a folder) and DST."""
    src = osp.normpath(osp.abspath(src))
    dst = osp.normpath(osp.abspath(dst))
    if osp.isfile(src):
        # A DST that is a folder, or names none of a config file, receives the file under its own name.
        into_folder = osp.isdir(dst) or not dst.endswith('.py')
        return {src: osp.join(dst, osp.basename(src)) if into_folder else dst}
    if not osp.isdir(src):
        raise SystemExit(f'{src} is neither a config file nor a folder')
    tree = {}
    for folder, _, files in sorted(os.walk(src)):
        for name in sorted(files):
            path = osp.join(folder, name)
            rel_path = osp.relpath(path, src)
            if name.endswith('.py') and not any(fnmatch.fnmatch(rel_path, pattern) for pattern in excludes):
                tree[path] = osp.join(dst, rel_path)
    return tree


def convert(src, dst, excludes=(), out=sys.stdout):
    """Converts SRC into DST and prints the report; returns the errors (ConversionError)."""
    reports, errors = Converter(conversion_tree(src, dst, excludes)).run()
    for report in reports:
        print('\n'.join(report.lines()), file=out)
    print(f'{len(reports)} config(s) written under {osp.abspath(dst)}', file=out)
    return errors


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('src', nargs='?', help='an MMRazor config file or a folder of them')
    parser.add_argument('dst', help='the converted file (a .py name), or a folder (created)')
    parser.add_argument('--mmrazor-zoo', action='store_true',
                        help=f'SRC is MMRazor\'s distillation configs in the installed mmrazor wheel ({ZOO_DISTILL})')
    parser.add_argument('--exclude', action='append', default=[], metavar='GLOB',
                        help='leave out files of a folder SRC whose path below it matches, e.g. "mmdet3d/*"')
    args = parser.parse_args()
    if args.mmrazor_zoo == (args.src is not None):
        parser.error('give either SRC or --mmrazor-zoo')
    if args.mmrazor_zoo:
        args.src = mmrazor_zoo()
    return args


def main():
    args = parse_args()
    errors = convert(args.src, args.dst, args.exclude)
    if errors:
        print(f'{len(errors)} config(s) not converted:', file=sys.stderr)
        for error in errors:
            print(f'  {error.path}:', file=sys.stderr)
            for problem in error.problems:
                print(f'    {problem}', file=sys.stderr)
        sys.exit(1)


if __name__ == '__main__':
    main()
