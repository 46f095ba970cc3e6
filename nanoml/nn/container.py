"""Containers: Sequential (a pipeline of layers) and ModuleList (a registered list)."""

from nanoml.nn.fusion import fused_steps
from nanoml.nn.module import Module


class ModuleList(Module):
    """A list of modules whose parameters are registered (as "0", "1", ...)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module):
        setattr(self, str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        return list(self._modules.values())[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Layers applied in order: ``Sequential(Linear(4, 8), ReLU(), Linear(8, 2))``.

    Conv2d -> ReLU / MaxPool2d and Linear -> ReLU chains run fused, with the same values and
    gradients (see `nanoml.nn.fusion`); set ``fuse = False`` on an instance to run every layer
    on its own.
    """

    fuse = True

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        modules = list(self._modules.values())
        for step in fused_steps(modules) if self.fuse else modules:
            x = step(x)
        return x
