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
