"""All twelve connectors, built from the registry by MMRazor's type names, train together under DDP without
find_unused_parameters: every trainable parameter takes part in each step and is in the state dict."""
import torch
import torch.distributed as dist
from torch import nn

import mmdistkd.models  # noqa: F401  (registers the connectors)
from mmdistkd.registry import build_in_mmdistkd_scope
from mmdistkd.testing import free_port

# name: (config, input shape); small versions of MMRazor's configurations.
CONNECTORS = dict(
    byot=(dict(type='BYOTConnector', in_channel=4, out_channel=8, num_classes=3, expansion=1, pool_size=4,
               stride=2), (2, 4, 8, 8)),
    crd=(dict(type='CRDConnector', dim_in=16, dim_out=4), (2, 16, 1, 1)),
    conv_module=(dict(type='ConvModuleConnector', in_channel=4, out_channel=8, norm_cfg=dict(type='BN'),
                      act_cfg=None), (2, 4, 4, 4)),
    fbkd_student=(dict(type='FBKDStudentConnector', in_channels=4, mode='dot_product', sub_sample=True),
                  (2, 4, 8, 8)),
    fbkd_teacher=(dict(type='FBKDTeacherConnector', in_channels=4, mode='dot_product', sub_sample=True),
                  (2, 4, 8, 8)),
    mgd=(dict(type='MGDConnector', student_channels=4, teacher_channels=8), (2, 4, 4, 4)),
    norm=(dict(type='NormConnector', in_channels=4, norm_cfg=dict(type='BN')), (2, 4, 4, 4)),
    ofd=(dict(type='OFDTeacherConnector'), (2, 4, 4, 4)),
    paraphraser_pretrain=(dict(type='Paraphraser', in_channel=4, out_channel=2, phase='pretrain'), (2, 4, 4, 4)),
    paraphraser_train=(dict(type='Paraphraser', in_channel=4, out_channel=2, phase='train'), (2, 4, 4, 4)),
    translator=(dict(type='Translator', in_channel=4, out_channel=2), (2, 4, 4, 4)),
    functional=(dict(type='TorchFunctionalConnector', function_name='adaptive_avg_pool2d',
                     func_args=dict(output_size=1)), (2, 4, 4, 4)),
    nn_layer=(dict(type='TorchNNConnector', module_name='Conv2d',
                   module_args=dict(in_channels=4, out_channels=2, kernel_size=1)), (2, 4, 4, 4)),
)


class AllConnectors(nn.Module):
    """A stand-in for a distiller: a loss on every output that carries a gradient."""

    def __init__(self):
        super().__init__()
        self.connectors = nn.ModuleDict({name: build_in_mmdistkd_scope(cfg) for name, (cfg, _) in CONNECTORS.items()})
        self.connectors['ofd'].init_margin(torch.zeros(4))

    def forward(self, features):
        outputs = []
        for name, connector in self.connectors.items():
            output = connector(features[name])
            outputs += output if isinstance(output, tuple) else [output]
        return sum((o**2).mean() for o in outputs if o.requires_grad)


def test_every_trainable_parameter_gets_a_gradient_in_ddp_without_find_unused_parameters():
    torch.manual_seed(0)
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{free_port()}', rank=0, world_size=1)
    try:
        model = nn.parallel.DistributedDataParallel(AllConnectors(), find_unused_parameters=False)
        for _ in range(2):  # an unused parameter fails the second step's forward
            model.zero_grad()
            model({name: torch.randn(shape) for name, (_, shape) in CONNECTORS.items()}).backward()
    finally:
        dist.destroy_process_group()
    trainable = {name for name, p in model.module.named_parameters() if p.requires_grad}
    assert not [name for name, p in model.module.named_parameters() if p.requires_grad and p.grad is None]
    assert trainable <= set(model.module.state_dict())
    # Only the train-phase paraphraser (a fixed target) is frozen.
    assert {name.split('.')[1] for name, p in model.module.named_parameters() if not p.requires_grad} == {
        'paraphraser_train'}


def test_forward_train_is_mmrazors_name_for_the_forward():
    torch.manual_seed(1)
    connector = build_in_mmdistkd_scope(CONNECTORS['conv_module'][0]).eval()
    feature = torch.randn(2, 4, 4, 4)
    torch.testing.assert_close(connector.forward_train(feature), connector(feature))
