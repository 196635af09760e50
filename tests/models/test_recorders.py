"""Recorders on tiny torch modules and mmpretrain's GlobalAveragePooling: one record per call, what
record_idx / data_idx pick, when recording happens, and the errors for a wrong source or index."""
import pytest
import torch
from mmpretrain.models.necks import GlobalAveragePooling
from torch import nn

import mmdistkd  # noqa: F401
from mmdistkd.models.recorders import MethodOutputs, ModuleInputs, ModuleOutputs, RecorderManager

POOL_FORWARD = 'mmpretrain.models.necks.GlobalAveragePooling.forward'


class Scale(nn.Module):

    def forward(self, x, factor):
        return x * factor


class Levels(nn.Module):
    """One ``scale`` module called once per level, like a head shared by FPN levels."""

    def __init__(self):
        super().__init__()
        self.scale = Scale()

    def forward(self, levels):
        return [self.scale(level, factor) for factor, level in enumerate(levels, start=1)]


class TwoPools(nn.Module):
    """Two instances of the same class: a method recorder on the class must see both calls."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 1)
        self.pool_a = GlobalAveragePooling()
        self.pool_b = GlobalAveragePooling()

    def forward(self, x):
        x = self.conv(x)
        return self.pool_a(x), self.pool_b(2 * x)


def manager(**recorders):
    return RecorderManager(recorders)


def levels():
    torch.manual_seed(0)
    return [torch.randn(2, 3), torch.randn(4, 3), torch.randn(1, 3)]


def test_module_outputs_keep_one_record_per_call_and_record_idx_picks_them():
    model, inputs = Levels(), levels()
    recorders = manager(out=dict(type='mmdistkd.ModuleOutputs', source='scale'))
    recorders.prepare_from_model(model, role='student')
    with recorders:
        outputs = model(inputs)
    recorder = recorders.get_recorder('out')
    assert isinstance(recorder, ModuleOutputs) and len(recorder.records) == 3
    torch.testing.assert_close(recorder.get_record_data(), outputs[0])  # record_idx defaults to 0
    torch.testing.assert_close(recorder.get_record_data(-1), outputs[2])
    torch.testing.assert_close(recorder.get_record_data([2, 1]), [outputs[2], outputs[1]])
    torch.testing.assert_close(recorder.get_record_data('all'), outputs)


def test_module_inputs_keep_the_positional_inputs_and_data_idx_picks_one():
    model, inputs = Levels(), levels()
    recorders = manager(inp=dict(type='mmdistkd.ModuleInputs', source='scale'))
    recorders.prepare_from_model(model, role='student')
    with recorders:
        model(inputs)
    recorder = recorders.get_recorder('inp')
    assert isinstance(recorder, ModuleInputs)
    first_input, first_factor = recorder.get_record_data(0)
    torch.testing.assert_close(first_input, inputs[0])
    assert first_factor == 1
    torch.testing.assert_close(recorder.get_record_data('all', data_idx=0), inputs)
    assert recorder.get_record_data([1, 2], data_idx=1) == [2, 3]


def test_index_errors_say_how_many_records_there_are():
    model = Levels()
    recorders = manager(out=dict(type='mmdistkd.ModuleOutputs', source='scale'),
                        inp=dict(type='mmdistkd.ModuleInputs', source='scale'))
    recorders.prepare_from_model(model, role='teacher')
    with pytest.raises(RuntimeError, match="Recorder for 'scale' holds no record"):
        recorders.get_recorder('out').get_record_data()
    with recorders:
        model(levels()[:2])
    with pytest.raises(IndexError, match=r"record_idx=2 but 'scale' was called 2 time\(s\)"):
        recorders.get_recorder('out').get_record_data(2)
    with pytest.raises(IndexError, match='record_idx=5'):
        recorders.get_recorder('out').get_record_data([0, 5])
    with pytest.raises(IndexError, match=r"data_idx=2 does not index the record of 'scale' \(a tuple\)"):
        recorders.get_recorder('inp').get_record_data(0, data_idx=2)


def test_records_are_taken_only_inside_the_with_block_and_reset_empties_them():
    model, inputs = Levels(), levels()
    recorders = manager(out=dict(type='mmdistkd.ModuleOutputs', source='scale'))
    recorders.prepare_from_model(model, role='student')
    recorder = recorders.get_recorder('out')
    model(inputs)
    assert recorder.records == []
    with recorders:
        model(inputs[:1])
    model(inputs)  # after the block: not recorded
    assert len(recorder.records) == 1
    with recorders:  # entering starts from an empty record list
        model(inputs[:2])
    assert len(recorder.records) == 2
    recorders.reset()
    assert recorder.records == []


def test_a_wrong_module_name_lists_the_closest_real_names():
    recorders = manager(out=dict(type='mmdistkd.ModuleOutputs', source='scael'))
    with pytest.raises(ValueError, match=r"The student \(Levels\) has no module named 'scael'\. "
                                         r'Closest names: scale\.'):
        recorders.prepare_from_model(Levels(), role='student')


def test_method_outputs_record_every_instance_of_the_prepared_model_only():
    torch.manual_seed(0)
    student, teacher, outsider = TwoPools(), TwoPools(), GlobalAveragePooling()
    student_recorders = manager(pooled=dict(type='mmdistkd.MethodOutputs', source=POOL_FORWARD))
    teacher_recorders = manager(pooled=dict(type='mmdistkd.MethodOutputs', source=POOL_FORWARD))
    student_recorders.prepare_from_model(student, role='student')
    teacher_recorders.prepare_from_model(teacher, role='teacher')
    x = torch.randn(2, 2, 3, 3)
    with student_recorders, teacher_recorders:
        student_out = student(x)
        outsider(x)  # a module of neither model
        teacher_out = teacher(x)

    recorder = student_recorders.get_recorder('pooled')
    assert isinstance(recorder, MethodOutputs) and len(recorder.records) == 2
    torch.testing.assert_close(recorder.get_record_data('all'), list(student_out))
    # Both recorders listen to the same patched method; each kept only its own model's calls.
    teacher_recorder = teacher_recorders.get_recorder('pooled')
    assert len(teacher_recorder.records) == 2
    torch.testing.assert_close(teacher_recorder.get_record_data('all'), list(teacher_out))
    assert not torch.equal(student_out[0], teacher_out[0])


@pytest.mark.parametrize('source, message', [
    ('mmpretrain.models.necks.NoSuchPool.forward', 'is not "package.module.Class.method"'),
    ('no_such_package.Pool.forward', 'is not "package.module.Class.method"'),
    ('mmpretrain.models.necks.GlobalAveragePooling.backward', "GlobalAveragePooling has no method 'backward'"),
])
def test_method_outputs_source_errors(source, message):
    recorders = manager(pooled=dict(type='mmdistkd.MethodOutputs', source=source))
    with pytest.raises(ValueError, match=message):
        recorders.prepare_from_model(TwoPools(), role='student')


# ------------------------------------------------------------------------------ per-level module lists
class PerLevelConvs(nn.Module):
    """One conv per level in a ModuleList (or ModuleDict), run in ``order``: the records follow the children."""

    def __init__(self, as_dict=False):
        super().__init__()
        convs = [nn.Conv2d(2, 3, 1) for _ in range(3)]
        self.convs = nn.ModuleDict({f'p{i}': conv for i, conv in enumerate(convs)}) if as_dict else \
            nn.ModuleList(convs)

    def forward(self, levels, order):
        convs = list(self.convs.values()) if isinstance(self.convs, nn.ModuleDict) else list(self.convs)
        return {i: convs[i](levels[i]) for i in order}


@pytest.mark.parametrize('as_dict', [False, True])
def test_a_module_list_records_its_children_in_child_order_whatever_the_call_order(as_dict):
    torch.manual_seed(0)
    model = PerLevelConvs(as_dict)
    inputs = [torch.randn(1, 2, size, size) for size in (4, 2, 1)]
    recorders = manager(out=dict(type='mmdistkd.ModuleOutputs', source='convs'),
                        inp=dict(type='mmdistkd.ModuleInputs', source='convs'))
    recorders.prepare_from_model(model, role='student')
    with recorders:
        outputs = model(inputs, order=(2, 0, 1))
    torch.testing.assert_close(recorders.get_recorder('out').get_record_data('all'), [outputs[i] for i in range(3)])
    torch.testing.assert_close(recorders.get_recorder('inp').get_record_data('all', data_idx=0), inputs)
    # Called twice per step: child order first, call order within a child.
    with recorders:
        first = model(inputs, order=(1, 0))
        second = model(inputs, order=(0, 1))
    torch.testing.assert_close(recorders.get_recorder('out').get_record_data('all'),
                               [first[0], second[0], first[1], second[1]])


def test_an_empty_module_list_is_an_error():
    model = nn.Module()
    model.convs = nn.ModuleList()
    with pytest.raises(ValueError, match="'convs' is an empty ModuleList"):
        manager(out=dict(type='mmdistkd.ModuleOutputs', source='convs')).prepare_from_model(model, role='teacher')


def build_mmdet_head(cfg):
    from mmdet.registry import MODELS as MMDET_MODELS
    from mmengine.registry import DefaultScope
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MMDET_MODELS.build(cfg)


def test_rtmdet_per_level_convs_and_gfl_shared_conv_give_one_record_per_level_in_level_order():
    """RTMDet keeps one classification conv per FPN level, GFL shares one: ``record_idx='all'`` gives the
    class scores of levels 0, 1, 2 for both."""
    torch.manual_seed(0)
    rtmdet = build_mmdet_head(dict(
        type='RTMDetSepBNHead', num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
        anchor_generator=dict(type='MlvlPointGenerator', offset=0, strides=[8, 16, 32]),
        with_objectness=False, norm_cfg=dict(type='BN'), act_cfg=dict(type='SiLU')))  # as rtmdet_l_8xb32
    gfl = build_mmdet_head(dict(
        type='GFLHead', num_classes=3, in_channels=8, feat_channels=8, stacked_convs=1,
        anchor_generator=dict(type='AnchorGenerator', ratios=[1.0], octave_base_scale=8, scales_per_octave=1,
                              strides=[8, 16, 32]), norm_cfg=dict(type='GN', num_groups=4)))
    assert isinstance(rtmdet.rtm_cls, nn.ModuleList) and len(rtmdet.rtm_cls) == 3
    feats = [torch.randn(2, 8, size, size) for size in (8, 4, 2)]
    for head, source in ((rtmdet, 'rtm_cls'), (gfl, 'gfl_cls')):
        recorders = manager(cls=dict(type='mmdistkd.ModuleOutputs', source=source))
        recorders.prepare_from_model(head, role='student')
        with recorders:
            cls_scores, _ = head(feats)
        records = recorders.get_recorder('cls').get_record_data('all')
        assert [r.shape[-1] for r in records] == [8, 4, 2]
        torch.testing.assert_close(records, list(cls_scores))
    # RTMDet's record i is rtm_cls[i]'s output on level i's classification features.
    with torch.no_grad():
        expected = [rtmdet.rtm_cls[i](rtmdet.cls_convs[i][0](feat)) for i, feat in enumerate(feats)]
    torch.testing.assert_close(records_of(rtmdet, feats), expected)


def records_of(head, feats):
    recorders = manager(cls=dict(type='mmdistkd.ModuleOutputs', source='rtm_cls'))
    recorders.prepare_from_model(head, role='student')
    with recorders, torch.no_grad():
        head(feats)
    return recorders.get_recorder('cls').get_record_data('all')


def test_records_by_name_and_replay_round_trip():
    """What a tool records once (records_by_name) it can hand back to the recorders later (replay)."""
    manager = RecorderManager(dict(first=dict(type='ModuleOutputs', source='0'),
                                   second=dict(type='ModuleOutputs', source='1')))
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
    manager.prepare_from_model(model, role='student')
    with manager:
        model(torch.ones(1, 2))
    recorded = {name: list(records) for name, records in manager.records_by_name().items()}
    assert [len(records) for records in recorded.values()] == [1, 1]
    manager.reset()
    manager.replay(recorded)
    assert manager.get_recorder('second').get_record_data() is recorded['second'][0]
