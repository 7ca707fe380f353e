from nnrun_signum import Signum

from nnrun.testing import check_optimizer


def test_signum_keeps_every_optimizer_invariant():
    check_optimizer(Signum, lr=0.01, momentum=0.9)
