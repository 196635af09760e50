"""Which configs are distillation configs."""


def is_distill_config(cfg):
    """A distillation config's model has a student (``architecture``) and a ``teacher``."""
    model = cfg.get('model')
    return isinstance(model, dict) and 'teacher' in model and 'architecture' in model
