"""Source of a small third-party plugin module, installed by several tests as a throwaway
distribution (see the `install_plugin` fixture in conftest.py)."""

THIRD_PARTY_OPTIMIZER = """
import nnrun

class SignSGD(nnrun.Optimizer):
    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, lr=lr)

    def step(self):
        for p in self.params:
            if p.grad is not None:
                p.data.add_(p.grad.sign(), alpha=-self.hyperparameters["lr"])

@nnrun.hookimpl
def register_optimizers(register):
    register("signsgd", SignSGD)
"""

THIRD_PARTY_DATASET = """
import torch
import nnrun

class Checkerboard(nnrun.Dataset):
    '''n points in the unit square, labelled by which square of a size x size board they are on.'''

    def __init__(self, n: int, size: int = 2):
        if n < 1:
            raise ValueError(f"Invalid n: {n}")
        self.n, self.size = n, size

    def load(self, context):
        x = torch.rand(self.n, 2, generator=context.generator, dtype=torch.float64)
        cells = (x * self.size).floor().to(torch.int64)
        y = (cells[:, 0] + cells[:, 1]) % 2
        return nnrun.LoadedData(
            x.to(context.dtype), y, ("u", "v"), ("colour",), "classification", ("black", "white")
        )

@nnrun.hookimpl
def register_datasets(register):
    register("checkerboard", Checkerboard)
"""

#: An optimizer wrapping another one named by its `inner` table, as a wrapper such as lookahead does.
WRAPPING_OPTIMIZER = """
import nnrun

class Repeat(nnrun.Optimizer):
    def __init__(self, params, inner: nnrun.InnerOptimizer, times: int = 2):
        if times < 1:
            raise ValueError(f"Invalid times: {times}")
        super().__init__(params, times=times)
        self.inner = inner(self.params)

    def step(self):
        for _ in range(self.hyperparameters["times"]):
            self.inner.step()

@nnrun.hookimpl
def register_optimizers(register):
    register("repeat", Repeat)
"""
