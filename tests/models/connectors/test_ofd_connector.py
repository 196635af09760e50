"""OFDTeacherConnector: the teacher feature clipped from below by the per-channel margin OFDDistiller sets, against
an element-by-element numpy reference."""
import numpy as np
import pytest
import torch

from mmdistkd.models.connectors import OFDTeacherConnector


def reference_clip(feature, margin):
    out = feature.copy()
    for index in np.ndindex(*feature.shape):
        out[index] = max(feature[index], margin[index[1]])
    return out


@pytest.mark.parametrize('margin_shape', [(1, 3, 1, 1), (3, )])  # MMRazor's OFDDistiller gives (1, C, 1, 1)
def test_clips_each_channel_at_its_margin_and_detaches(margin_shape):
    torch.manual_seed(0)
    connector = OFDTeacherConnector()
    margin = torch.tensor([-0.5, 0.0, 0.7]).view(margin_shape)
    connector.init_margin(margin)
    feature = torch.randn(2, 3, 4, 5, requires_grad=True)
    clipped = connector(feature)
    expected = reference_clip(feature.detach().double().numpy(), [-0.5, 0.0, 0.7])
    np.testing.assert_allclose(clipped.double().numpy(), expected, rtol=0, atol=1e-7)
    assert not clipped.requires_grad  # the teacher's target


def test_margin_follows_the_module_and_is_not_checkpointed():
    connector = OFDTeacherConnector()
    connector.init_margin(torch.zeros(1, 2, 1, 1))
    assert 'margin' not in connector.state_dict()  # recomputed from the teacher's BN layers, as in MMRazor
    connector.double()
    assert connector.margin.dtype == torch.float64


def test_half_precision_teacher_feature():
    connector = OFDTeacherConnector()
    connector.init_margin(torch.tensor([0.25, -0.25]))
    feature = torch.tensor([[[[-1.0]], [[-0.125]]]]).half()
    torch.testing.assert_close(connector(feature).float(), torch.tensor([[[[0.25]], [[-0.125]]]]))


def test_errors_say_what_is_missing():
    connector = OFDTeacherConnector()
    with pytest.raises(RuntimeError, match='OFDDistiller.*init_margin'):
        connector(torch.randn(1, 2, 3, 3))
    connector.init_margin(torch.zeros(4))
    with pytest.raises(ValueError, match=r'4 channels.*\(1, 2, 3, 3\).*BN layer'):
        connector(torch.randn(1, 2, 3, 3))
