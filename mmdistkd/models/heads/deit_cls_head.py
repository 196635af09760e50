"""MMRazor's ``DeiTClsHead``, to train a distilled DeiT ("Training data-efficient image transformers & distillation
through attention", Touvron et al., ICML 2021, arXiv 2012.12877) with a teacher's logits distilled into the
distillation token's head. Imports mmpretrain's models: built through the factory in ``__init__.py``."""
from mmpretrain.models.heads import DeiTClsHead as MMPretrainDeiTClsHead


class DeiTClsHead(MMPretrainDeiTClsHead):
    """mmpretrain's ``DeiTClsHead`` (same arguments and parameters, so checkpoints interchange) whose ``forward``
    returns the class token's score alone, in training and inference, without mmpretrain's warning that it
    cannot train: the label loss is on the class token, and the distillation token's ``layers.head_dist`` still
    runs so that a recorder on ``head.layers.head_dist`` takes its score for the distillation loss.

    The paper (and mmpretrain) predict with the average of both heads' scores; MMRazor's head, followed here,
    predicts with the class token's.
    """

    def forward(self, feats):
        cls_token, dist_token = self.pre_logits(feats)
        self.layers.head_dist(dist_token)  # for the recorder of the distillation token's score
        return self.layers.head(cls_token)
