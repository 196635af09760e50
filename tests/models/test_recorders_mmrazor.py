"""MMRazor's other recorders: FunctionOutputs / FunctionInputs (calls inside the prepared model only),
MethodInputs, Parameter, and module recorders on the whole model (``source=''``)."""
import pytest
import torch
from mmengine.registry import DefaultScope
from mmpretrain.models.necks import GlobalAveragePooling
from mmpretrain.structures import DataSample
from torch import nn

import mmdistkd  # noqa: F401
from mmdistkd.models.recorders import FunctionInputs, FunctionOutputs, MethodInputs, ParameterRecorder, RecorderManager
from mmdistkd.registry import MODELS

# The functions and classes below are recorded by their import path in this test module.
SHIFT = f'{__name__}.shift'


def shift(x, offset=0.0, scale=1.0):
    return x * scale + offset


def shift_twice(x, offset):
    """A plain function between the module's forward and ``shift``: the call is still inside the model."""
    return shift(shift(x, offset), offset=offset)


class Shifter(nn.Module):

    def __init__(self, offset):
        super().__init__()
        self.offset = offset
        self.linear = nn.Linear(3, 3)

    def forward(self, x):
        return shift_twice(self.linear(x), self.offset)


class Scale(nn.Module):

    def forward(self, x, factor=1.0, bias=0.0):
        return x * factor + bias


class ScaledPool(nn.Module):

    def __init__(self):
        super().__init__()
        self.scale = Scale()
        self.pool = GlobalAveragePooling()

    def forward(self, x):
        return self.pool(self.scale(x, factor=2.0)), self.scale(x, 3.0, bias=1.0)


def prepared(model, role='student', **recorders):
    manager = RecorderManager(recorders)
    manager.prepare_from_model(model, role=role)
    return manager


def test_function_outputs_keep_only_calls_inside_the_prepared_model_while_both_models_record():
    torch.manual_seed(0)
    student, teacher = Shifter(offset=1.0), Shifter(offset=-5.0)
    student_recorders = prepared(student, out=dict(type='FunctionOutputs', source=SHIFT))
    teacher_recorders = prepared(teacher, 'teacher', out=dict(type='FunctionOutputs', source=SHIFT))
    x = torch.randn(2, 3)
    with student_recorders, teacher_recorders:
        student_out = student(x)
        shift(x, 100.0)  # outside both models: neither keeps it
        teacher_out = teacher(x)
    student_recorder = student_recorders.get_recorder('out')
    assert isinstance(student_recorder, FunctionOutputs)
    with torch.no_grad():
        inner_s, inner_t = student.linear(x) + 1.0, teacher.linear(x) - 5.0
    # shift_twice calls shift twice: the inner call, then the outer one on its result.
    torch.testing.assert_close(student_recorder.get_record_data('all'), [inner_s, student_out])
    torch.testing.assert_close(teacher_recorders.get_recorder('out').get_record_data('all'), [inner_t, teacher_out])


def test_function_recorders_keep_nothing_outside_their_recording_block():
    """As SingleTeacherDistill.loss runs them: the student's recorders on during its forward only, the
    teacher's during the teacher's."""
    student, teacher = Shifter(offset=1.0), Shifter(offset=2.0)
    student_recorders = prepared(student, out=dict(type='FunctionOutputs', source=SHIFT))
    teacher_recorders = prepared(teacher, 'teacher', out=dict(type='FunctionOutputs', source=SHIFT))
    x = torch.randn(2, 3)
    with teacher_recorders:
        teacher_out = teacher(x)
        student(x)  # the student's recorders are off: not kept by either
    with student_recorders:
        student_out = student(x)
    teacher(x)  # after both blocks
    assert len(teacher_recorders.get_recorder('out').records) == 2
    assert len(student_recorders.get_recorder('out').records) == 2
    torch.testing.assert_close(teacher_recorders.get_recorder('out').get_record_data(1), teacher_out)
    torch.testing.assert_close(student_recorders.get_recorder('out').get_record_data(1), student_out)


def test_function_inputs_keep_positional_then_passed_keyword_arguments_in_signature_order():
    model = Shifter(offset=0.5)
    recorders = prepared(model, inp=dict(type='FunctionInputs', source=SHIFT))
    x = torch.randn(2, 3)
    with recorders:
        model(x)
    recorder = recorders.get_recorder('inp')
    assert isinstance(recorder, FunctionInputs)
    inner, outer = recorder.records
    with torch.no_grad():
        linear_out = model.linear(x)
    # shift(linear_out, 0.5) then shift(inner_result, offset=0.5): ``scale`` was never passed, so not recorded.
    torch.testing.assert_close(inner, [linear_out, 0.5])
    torch.testing.assert_close(outer, [linear_out + 0.5, 0.5])
    assert recorder.get_record_data(1, data_idx=1) == 0.5


def test_method_inputs_keep_the_arguments_without_the_instance_and_only_of_the_prepared_model():
    torch.manual_seed(0)
    student, teacher = ScaledPool(), ScaledPool()
    source = f'{__name__}.Scale.forward'
    student_recorders = prepared(student, inp=dict(type='MethodInputs', source=source),
                                 pooled=dict(type='MethodInputs',
                                             source='mmpretrain.models.necks.GlobalAveragePooling.forward'))
    teacher_recorders = prepared(teacher, 'teacher', inp=dict(type='MethodInputs', source=source))
    x = torch.randn(2, 4, 3, 3)
    with student_recorders, teacher_recorders:
        student(x)
        Scale()(x, factor=7.0)  # an instance in neither model
    recorder = student_recorders.get_recorder('inp')
    assert isinstance(recorder, MethodInputs)
    # self.scale(x, factor=2.0) and self.scale(x, 3.0, bias=1.0).
    torch.testing.assert_close(recorder.get_record_data('all'), [[x, 2.0], [x, 3.0, 1.0]])
    torch.testing.assert_close(student_recorders.get_recorder('pooled').get_record_data(0, data_idx=0), 2.0 * x)
    assert teacher_recorders.get_recorder('inp').records == []


@pytest.mark.parametrize('cfg, message', [
    (dict(type='FunctionOutputs', source=f'{__name__}.no_such_function'), 'has no function'),
    (dict(type='FunctionInputs', source=f'{__name__}.Scale'), 'has no function'),
    (dict(type='FunctionOutputs', source='no_such_package.shift'), 'is not "package.module.function" of an'),
    (dict(type='MethodInputs', source=f'{__name__}.shift.forward'), 'is not "package.module.Class.method"'),
    (dict(type='MethodInputs', source='mmengine.visualization.Visualizer.draw_featmap'), 'is a staticmethod'),
])
def test_call_recorder_source_errors(cfg, message):
    with pytest.raises(ValueError, match=message):
        prepared(ScaledPool(), rec=cfg)


def test_parameter_is_recorded_once_as_the_live_parameter_and_survives_reset():
    model = ScaledPool()
    model.conv = nn.Conv2d(2, 2, 1)
    recorders = prepared(model, weight=dict(type='Parameter', source='conv.weight'))
    recorder = recorders.get_recorder('weight')
    assert isinstance(recorder, ParameterRecorder)
    with recorders:  # entering resets the other recorders
        pass
    recorders.reset()
    assert recorder.get_record_data() is model.conv.weight
    recorder.get_record_data().square().sum().backward()
    torch.testing.assert_close(model.conv.weight.grad, 2 * model.conv.weight.detach())
    with pytest.raises(ValueError, match=r"has no parameter named 'conv.wieght'\. Closest names: conv\.weight"):
        prepared(model, weight=dict(type='Parameter', source='conv.wieght'))


class Detector(nn.Module):
    """Called as MMRazor / mmdistkd call a student: ``model(inputs, data_samples, mode='loss')``."""

    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(3, 1)

    def forward(self, inputs, data_samples=None, mode='tensor'):
        return self.linear(inputs)


def test_an_empty_source_records_the_whole_model_inputs_and_outputs():
    model = Detector()
    recorders = prepared(model, data_samples=dict(type='ModuleInputs', source=''),
                         out=dict(type='ModuleOutputs', source=''))
    inputs, data_samples = torch.randn(2, 3), [dict(sample_idx=0), dict(sample_idx=1)]
    with recorders:
        out = model(inputs, data_samples, mode='loss')
    # MMRazor's CRD config maps data_samples=dict(recorder='data_samples', data_idx=1).
    assert recorders.get_recorder('data_samples').get_record_data(0, data_idx=1) is data_samples
    assert recorders.get_recorder('data_samples').get_record_data(0, data_idx=0) is inputs
    assert recorders.get_recorder('out').get_record_data() is out


def test_plain_type_names_build_under_another_default_scope():
    """A hook built by an mmpretrain runner builds its recorders under the default scope 'mmpretrain'."""
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        recorders = RecorderManager(dict(out=dict(type='FunctionOutputs', source=SHIFT),
                                         w=dict(type='Parameter', source='linear.bias')))
    assert isinstance(recorders.get_recorder('out'), FunctionOutputs)
    assert isinstance(recorders.get_recorder('w'), ParameterRecorder)


def test_an_empty_source_on_a_distillation_student_records_the_step_data_samples():
    """MMRazor's CRD config: ``data_samples=dict(type='ModuleInputs', source='')`` on the student, read with
    ``data_idx=1``; SingleTeacherDistill calls its student as ``student(inputs, data_samples, mode='loss')``."""
    classifier = dict(
        type='ImageClassifier',
        backbone=dict(type='ResNet_CIFAR', depth=18, stem_channels=4, base_channels=4, out_indices=(3, )),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='LinearClsHead', num_classes=2, in_channels=32, loss=dict(type='CrossEntropyLoss')))
    logits = dict(type='ModuleOutputs', source='head.fc')
    distiller = dict(type='ConfigurableDistiller',
                     student_recorders=dict(logits=logits, data_samples=dict(type='ModuleInputs', source='')),
                     teacher_recorders=dict(logits=logits), distill_losses=dict(loss_kd=dict(type='KLDivergence')),
                     loss_forward_mappings=dict(loss_kd=dict(preds_S=dict(from_student=True, recorder='logits'),
                                                             preds_T=dict(from_student=False, recorder='logits'))))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(dict(type='mmdistkd.SingleTeacherDistill', architecture=classifier,
                                  teacher=classifier, distiller=distiller))
    inputs = torch.randn(2, 3, 8, 8)
    data_samples = [DataSample(sample_idx=torch.tensor(i)).set_gt_label(i) for i in range(2)]
    model.record_student(inputs, data_samples)
    recorder = model.distiller.student_recorders.get_recorder('data_samples')
    assert recorder.get_record_data(0, data_idx=1) is data_samples
