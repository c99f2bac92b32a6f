"""Algorithm 2: stochastic gradient ascent with PG-JD or PG-SF, evaluation, run folders."""

from weakpg._src.train import TrainConfig as TrainConfig
from weakpg._src.train import TrainState as TrainState
from weakpg._src.train import init_state as init_state
from weakpg._src.train import make_evaluator as make_evaluator
from weakpg._src.train import make_optimizer as make_optimizer
from weakpg._src.train import make_train_step as make_train_step
from weakpg._src.train import step_size as step_size
from weakpg._src.train import train as train
