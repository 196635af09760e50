"""ConfigurableDistiller on tiny torch models: what each mapping key hands a loss, data samples per the
loss contract, dict results, and the build-time errors a wrong config gets."""
import pytest
import torch
from mmengine.registry import DefaultScope
from torch import nn

import mmdistkd  # noqa: F401
from mmdistkd.models.distillers import ConfigurableDistiller
from mmdistkd.models.losses import DistillLoss, DISTLoss


class Head(nn.Module):

    def __init__(self, num_classes):
        super().__init__()
        self.num_classes = num_classes
        self.fc = nn.Linear(4, num_classes)

    def forward(self, x):
        return self.fc(x)


class Net(nn.Module):
    """A stem, then one head shared by every level (a module called once per level, as FPN heads are)."""

    def __init__(self, num_classes=3):
        super().__init__()
        self.stem = nn.Linear(4, 4)
        self.head = Head(num_classes)

    def forward(self, levels):
        return [self.head(self.stem(level)) for level in levels]


class Capture(DistillLoss):
    """Keeps what it was called with; the loss is ``sum(preds_S) - sum(preds_T)``."""

    teacher_inputs = ('preds_T', )

    def forward(self, preds_S, preds_T):
        self.inputs = dict(preds_S=preds_S, preds_T=preds_T)
        return total(preds_S) - total(preds_T)


class CaptureSamples(DistillLoss):
    teacher_inputs = ('preds_T', )
    takes_data_samples = True

    def forward(self, preds_S, preds_T, data_samples=None):
        self.data_samples = data_samples
        return total(preds_S) - total(preds_T)


class ClassScores(Capture):
    compares_class_scores = True


class WithExtras(DistillLoss):
    """Returns the loss and extra values to log, under the keys it is given."""

    def __init__(self, extra_keys=('ratio', )):
        super().__init__()
        self.extra_keys = extra_keys

    def forward(self, preds_S):
        return {'loss': total(preds_S), **{key: torch.tensor(float(i)) for i, key in enumerate(self.extra_keys)}}


class PlainMSE(nn.Module):
    """A third-party (MMRazor-style) loss: a plain nn.Module."""

    def forward(self, preds_S, preds_T):
        return ((preds_S - preds_T)**2).mean()


class PlainWithSamples(nn.Module):

    def forward(self, preds_S, data_samples=None):
        return total(preds_S)


def total(value):
    return sum(v.sum() for v in value) if isinstance(value, list) else value.sum()


def item(from_student, recorder='logits', **kwargs):
    return dict(from_student=from_student, recorder=recorder, **kwargs)


def distiller(losses=None, mappings=None, connectors=None, student_recorders=None, teacher_recorders=None):
    logits = dict(type='mmdistkd.ModuleOutputs', source='head.fc')
    return ConfigurableDistiller(
        student_recorders=student_recorders or dict(logits=logits,
                                                    stem_in=dict(type='mmdistkd.ModuleInputs', source='stem')),
        teacher_recorders=teacher_recorders or dict(logits=logits),
        connectors=connectors,
        distill_losses=losses or dict(loss_capture=dict(type=Capture)),
        loss_forward_mappings=mappings or dict(loss_capture=dict(preds_S=item(True), preds_T=item(False))))


def run(distill, student=None, teacher=None, levels=None, data_samples=None):
    """Prepares ``distill`` on the two nets, runs both on ``levels`` with the recorders on, and returns
    (losses, student outputs, teacher outputs)."""
    torch.manual_seed(0)
    student, teacher = student or Net(), teacher or Net()
    levels = levels or [torch.randn(2, 4), torch.randn(5, 4), torch.randn(1, 4)]
    distill.prepare_from_student(student)
    distill.prepare_from_teacher(teacher)
    with distill.student_recorders:
        outputs_S = student(levels)
    with distill.teacher_recorders:
        outputs_T = teacher(levels)
    return distill.compute_distill_losses(data_samples), outputs_S, outputs_T, levels


def test_record_idx_int_list_all_and_data_idx():
    mappings = dict(loss_capture=dict(preds_S=item(True, record_idx=[2, 0]),
                                      preds_T=item(False, record_idx='all')))
    loss = distiller(mappings=mappings)
    losses, outputs_S, outputs_T, _ = run(loss)
    captured = loss.distill_losses['loss_capture'].inputs
    assert [t.shape for t in captured['preds_S']] == [(1, 3), (2, 3)]
    torch.testing.assert_close(captured['preds_S'], [outputs_S[2], outputs_S[0]])
    torch.testing.assert_close(captured['preds_T'], outputs_T)
    torch.testing.assert_close(losses['loss_capture'], total([outputs_S[2], outputs_S[0]]) - total(outputs_T))

    mappings = dict(loss_capture=dict(preds_S=item(True, recorder='stem_in', record_idx=1, data_idx=0),
                                      preds_T=item(False)))  # record_idx defaults to 0
    loss = distiller(mappings=mappings)
    _, _, outputs_T, levels = run(loss)
    captured = loss.distill_losses['loss_capture'].inputs
    torch.testing.assert_close(captured['preds_S'], levels[1])  # stem's positional input of its 2nd call
    torch.testing.assert_close(captured['preds_T'], outputs_T[0])


def test_connector_transforms_the_record_and_each_record_of_a_list():
    connectors = dict(proj=dict(type=nn.Linear, in_features=3, out_features=3))
    mappings = dict(loss_capture=dict(preds_S=item(True, record_idx='all', connector='proj'),
                                      preds_T=item(False, record_idx=1)))
    loss = distiller(mappings=mappings, connectors=connectors)
    _, outputs_S, _, _ = run(loss)
    connector = loss.connectors['proj']
    torch.testing.assert_close(loss.distill_losses['loss_capture'].inputs['preds_S'],
                               [connector(o) for o in outputs_S])
    # The connector is a trainable part of the distiller.
    assert any(name.startswith('connectors.proj') for name, _ in loss.named_parameters())


def test_gradient_reaches_the_student_only_and_the_records_are_released():
    loss = distiller()
    student, teacher = Net(), Net()
    losses, _, _, _ = run(loss, student, teacher)
    losses['loss_capture'].backward()
    assert student.head.fc.weight.grad is not None
    assert teacher.head.fc.weight.grad is None  # the teacher input was detached by the loss
    for manager in (loss.student_recorders, loss.teacher_recorders):
        assert all(recorder.records == [] for recorder in manager.recorders.values())


def test_data_samples_go_only_to_losses_that_take_them():
    samples = [object(), object()]
    losses = dict(loss_capture=dict(type=Capture), loss_samples=dict(type=CaptureSamples))
    mapping = dict(preds_S=item(True), preds_T=item(False))
    loss = distiller(losses=losses, mappings=dict(loss_capture=mapping, loss_samples=mapping))
    run(loss, data_samples=samples)  # Capture's forward would reject a data_samples argument
    received = loss.distill_losses['loss_samples'].data_samples
    assert len(received) == 2 and all(a is b for a, b in zip(received, samples))


def test_plain_module_losses_work_with_their_mapped_arguments():
    losses = dict(loss_mse=dict(type=PlainMSE), loss_plain=dict(type=PlainWithSamples))
    mappings = dict(loss_mse=dict(preds_S=item(True), preds_T=item(False)),
                    loss_plain=dict(preds_S=item(True), data_samples=item(False)))
    result, outputs_S, outputs_T, _ = run(distiller(losses=losses, mappings=mappings))
    torch.testing.assert_close(result['loss_mse'], ((outputs_S[0] - outputs_T[0])**2).mean())
    torch.testing.assert_close(result['loss_plain'], outputs_S[0].sum())


def test_dict_results_log_their_extras_and_refuse_clashing_or_summed_keys():
    losses = dict(loss_extra=dict(type=WithExtras))
    mappings = dict(loss_extra=dict(preds_S=item(True)))
    result, outputs_S, _, _ = run(distiller(losses=losses, mappings=mappings))
    assert set(result) == {'loss_extra', 'ratio'}
    torch.testing.assert_close(result['loss_extra'], outputs_S[0].sum())
    assert result['ratio'].item() == 0.0

    losses = dict(loss_a=dict(type=WithExtras), loss_b=dict(type=WithExtras))
    mappings = dict(loss_a=dict(preds_S=item(True)), loss_b=dict(preds_S=item(True)))
    with pytest.raises(ValueError, match=r"'loss_b' returned keys \['ratio'\] that another loss already uses"):
        run(distiller(losses=losses, mappings=mappings))

    losses = dict(loss_a=dict(type=WithExtras, extra_keys=('loss_b', )), loss_b=dict(type=WithExtras))
    with pytest.raises(ValueError, match="extra keys \\['loss_b'\\]: mmengine adds every key containing 'loss'"):
        run(distiller(losses=losses, mappings=mappings))


def test_num_classes_of_compared_heads_must_agree():
    losses = dict(loss_capture=dict(type=ClassScores))
    distill = distiller(losses=losses)
    student, teacher = Net(num_classes=3), Net(num_classes=5)
    with pytest.raises(ValueError, match=r"'loss_capture' compares class scores, but the student head has "
                                         r'num_classes=3 and the teacher head has num_classes=5'):
        distill.check_num_classes(student, teacher)
    distill.check_num_classes(student, Net(num_classes=3))
    # A loss that does not compare class scores may distil heads of different widths.
    distiller().check_num_classes(student, teacher)


def retina_head(num_classes):
    from mmdet.models.dense_heads import RetinaHead
    with DefaultScope.overwrite_default_scope('mmdet'):  # its anchor generator and box coder, by scope
        return RetinaHead(num_classes=num_classes, in_channels=8, feat_channels=8, stacked_convs=1,
                          anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                                ratios=[0.5, 1.0], strides=[8, 16, 32]))


def test_dist_on_every_fpn_level_of_a_real_retina_head():
    """mmdet's RetinaHead runs retina_cls once per level: record_idx='all' hands DIST the 3 levels, in order,
    and the head's num_classes (on the recorded module's ancestor) is what check_num_classes compares."""
    torch.manual_seed(0)
    student, teacher = retina_head(3), retina_head(3)
    logits = dict(type='mmdistkd.ModuleOutputs', source='retina_cls')
    distill = ConfigurableDistiller(
        student_recorders=dict(cls=logits), teacher_recorders=dict(cls=logits),
        distill_losses=dict(loss_dist=dict(type='mmdistkd.DISTLoss', mode='sigmoid_anchor', num_classes=3)),
        loss_forward_mappings=dict(loss_dist=dict(logits_S=item(True, 'cls', record_idx='all'),
                                                  logits_T=item(False, 'cls', record_idx='all'))))
    distill.prepare_from_student(student)
    distill.prepare_from_teacher(teacher)
    distill.check_num_classes(student, teacher)
    feats = tuple(torch.randn(2, 8, size, size) for size in (8, 4, 2))
    with distill.student_recorders:
        cls_S, _ = student(feats)
    with distill.teacher_recorders:
        cls_T, _ = teacher(feats)
    losses = distill.compute_distill_losses([object(), object()])
    expected = DISTLoss(mode='sigmoid_anchor', num_classes=3)(cls_S, cls_T)
    torch.testing.assert_close(losses['loss_dist'], expected)

    with pytest.raises(ValueError, match='the student RetinaHead has num_classes=3 and the teacher RetinaHead '
                                         'has num_classes=4'):
        distill.check_num_classes(student, retina_head(4))


@pytest.mark.parametrize('kwargs, error, message', [
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True, recorder='logitz'), preds_T=item(False)))),
     ValueError, "names the student recorder 'logitz', but the student recorders are: logits, stem_in"),
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True)))),
     ValueError, r"loss_forward_mappings\['loss_capture'\] does not map \['preds_T'\], required by "
     r'Capture.forward\(preds_S, preds_T\)'),
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True), preds_T=item(False), logits_T=item(False)))),
     ValueError, r"maps 'logits_T', but Capture.forward\(preds_S, preds_T\) takes no such argument"),
    (dict(mappings=dict(other=dict(preds_S=item(True)))),
     ValueError, "distill loss 'loss_capture' has no entry in loss_forward_mappings"),
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True), preds_T=item(False)), loss_x=dict())),
     ValueError, r"names 'loss_x', which is not in distill_losses \(loss_capture\)"),
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True, record=0), preds_T=item(False)))),
     ValueError, r"unknown keys \['record'\]"),
    (dict(mappings=dict(loss_capture=dict(preds_S=item(True, connector='proj'), preds_T=item(False)))),
     ValueError, "names the connector 'proj', but the connectors are: none"),
    (dict(losses=dict(loss_capture=dict(type=CaptureSamples)),
          mappings=dict(loss_capture=dict(preds_S=item(True), preds_T=item(False), data_samples=item(True)))),
     ValueError, 'receives the batch\'s data samples from the distiller .*remove data_samples'),
    (dict(losses=dict(loss_capture=dict(type=PlainWithSamples)), mappings=dict(loss_capture=dict(
        preds_S=item(True)))),
     TypeError, 'PlainWithSamples.*has a data_samples parameter.*subclass it, or map data_samples'),
    (dict(losses=dict(loss_capture=dict(type='mmdistkd.ModuleOutputs', source='head'))),
     TypeError, "distill_losses\\['loss_capture'\\] built a ModuleOutputs, which is not a loss module"),
])
def test_build_errors_say_what_to_change(kwargs, error, message):
    with pytest.raises(error, match=message):
        distiller(**kwargs)


def test_an_instance_that_breaks_the_contract_fails_at_build():

    class SwitchesOnSamples(Capture):

        def __init__(self):
            super().__init__()
            self.takes_data_samples = True

    with pytest.raises(TypeError, match='takes_data_samples is True but its forward.*lacks a data_samples'):
        distiller(losses=dict(loss_capture=dict(type=SwitchesOnSamples)))


def test_unknown_recorder_module_fails_when_prepared():
    distill = distiller(student_recorders=dict(logits=dict(type='mmdistkd.ModuleOutputs', source='head.fcc')))
    with pytest.raises(ValueError, match=r"no module named 'head\.fcc'\. Closest names: head\.fc"):
        distill.prepare_from_student(Net())


def test_a_connectors_init_cfg_is_applied_when_it_is_built_and_kept_by_init_weights():
    """The Runner's init_weights does not enter the distiller's connectors (as MMRazor's ModuleDict): an init_cfg
    is applied at build, and what the connector holds then stays."""
    distiller = ConfigurableDistiller(connectors=dict(embed=dict(
        type='CRDConnector', dim_in=4, dim_out=3, init_cfg=dict(type='Constant', layer='Linear', val=0.5, bias=0.))))
    linear = distiller.connectors['embed'].linear
    assert (linear.weight == 0.5).all() and (linear.bias == 0).all()
    with torch.no_grad():
        linear.weight.fill_(0.25)
    distiller.init_weights()
    assert (linear.weight == 0.25).all()
