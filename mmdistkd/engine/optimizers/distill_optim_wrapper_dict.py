"""The optimizer wrappers of a distillation step (student and distiller modules), updated from its one loss."""
import contextlib

from mmengine.optim import AmpOptimWrapper, OptimWrapperDict


class DistillOptimWrapperDict(OptimWrapperDict):
    """An ``OptimWrapperDict`` whose wrappers (``architecture``: the student; ``distiller``: the distiller's
    modules) are updated together from the one loss of each step, so ``update_params`` works as with one
    optimizer (mmengine's ``BaseModel.train_step`` and its DDP wrapper call it; the Runner's
    ``initialize_count_status`` reaches every wrapper, which gradient accumulation and resume need).

    One backward fills the gradients of all wrappers; then each wrapper clips its own gradients
    (``clip_grad``) and steps its own optimizer. Because there is one backward, the wrappers must accumulate
    alike (same ``accumulative_counts``) and, under AMP, share one loss scale: every wrapper is an
    ``AmpOptimWrapper`` of the same ``dtype`` and ``loss_scale``, the first wrapper's ``GradScaler`` serves
    all (one scaled backward; each optimizer unscaled and stepped by it, skipping only its own step when its
    gradients overflowed, as torch's multi-optimizer AMP does; one scale update per step).
    """

    def __init__(self, **optim_wrappers):
        super().__init__(**optim_wrappers)
        if not optim_wrappers:
            raise ValueError('DistillOptimWrapperDict needs at least one optimizer wrapper')
        self._lead = next(iter(optim_wrappers.values()))
        counts = {name: wrapper._accumulative_counts for name, wrapper in self.items()}
        if len(set(counts.values())) > 1:
            raise ValueError(f'accumulative_counts differ between the optimizer wrappers ({counts}); one backward '
                             'of the step serves all of them, so give every wrapper the same accumulative_counts')
        self.loss_scaler = self._share_loss_scaler()

    def _share_loss_scaler(self):
        """The GradScaler of all wrappers under AMP (the first wrapper's, given to the others), else None."""
        amp = {name: isinstance(wrapper, AmpOptimWrapper) for name, wrapper in self.items()}
        if not any(amp.values()):
            return None
        if not all(amp.values()):
            raise ValueError(f'AMP is set for some optimizer wrappers only ({amp}); one scaled backward serves all '
                             "of them, so set type='AmpOptimWrapper' on every wrapper (tools/train.py --amp does)")
        settings = {name: (wrapper.cast_dtype, wrapper._scale_update_param, wrapper.loss_scaler.state_dict())
                    for name, wrapper in self.items()}
        if any(setting != settings[next(iter(settings))] for setting in settings.values()):
            raise ValueError(f'the AMP wrappers differ in dtype or loss_scale ({settings}); they share one loss '
                             'scale, so give every wrapper the same dtype and loss_scale')
        scaler = self._lead.loss_scaler
        for wrapper in self.values():
            wrapper.loss_scaler = scaler  # each wrapper's checkpoint then holds the one shared scale
        return scaler

    @contextlib.contextmanager
    def optim_context(self, model):
        # Same accumulation counts and precision for all (checked above): their contexts agree.
        with contextlib.ExitStack() as stack:
            for wrapper in self.values():
                stack.enter_context(wrapper.optim_context(model))
            yield

    def initialize_count_status(self, model, init_counts, max_counts):
        for wrapper in self.values():
            wrapper.initialize_count_status(model, init_counts, max_counts)

    def update_params(self, loss, step_kwargs=None, zero_kwargs=None):
        loss = self._lead.scale_loss(loss)  # the accumulation factor, the same for every wrapper
        self.backward(loss)
        if self._lead.should_update():
            self.step(**(step_kwargs or {}))
            self.zero_grad(**(zero_kwargs or {}))

    def backward(self, loss, **kwargs):
        """One backward (scaled under AMP) for all wrappers; each counts it, as its own ``backward`` would."""
        (self.loss_scaler.scale(loss) if self.loss_scaler is not None else loss).backward(**kwargs)
        for wrapper in self.values():
            wrapper._inner_count += 1

    def step(self, **kwargs):
        if self.loss_scaler is None:
            for wrapper in self.values():
                wrapper.step(**kwargs)
            return
        # AmpOptimWrapper.step would update the scale after each optimizer, so the next one would be unscaled
        # with a different scale: unscale and step each with the shared scaler, then update the scale once.
        for wrapper in self.values():
            if wrapper.clip_grad_kwargs:
                self.loss_scaler.unscale_(wrapper.optimizer)
                wrapper._clip_grad()
            self.loss_scaler.step(wrapper.optimizer, **kwargs)
        self.loss_scaler.update(self._lead._scale_update_param)

    def zero_grad(self, **kwargs):
        for wrapper in self.values():
            wrapper.zero_grad(**kwargs)
