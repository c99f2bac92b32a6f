"""Algorithm 2: stochastic gradient ascent with PG-JD or PG-SF, evaluation, run folders."""

from weakpg._src.config import TrainConfig as TrainConfig
from weakpg._src.driver import METRIC_FIELDS as METRIC_FIELDS
from weakpg._src.driver import precompile as precompile
from weakpg._src.driver import train as train
from weakpg._src.driver import train_seeds as train_seeds
from weakpg._src.errors import NonFiniteError as NonFiniteError
from weakpg._src.evaluation import make_evaluator as make_evaluator
from weakpg._src.train import FAULTS as FAULTS
from weakpg._src.train import Hyper as Hyper
from weakpg._src.train import TrainState as TrainState
from weakpg._src.train import hyper as hyper
from weakpg._src.train import init_state as init_state
from weakpg._src.train import make_optimizer as make_optimizer
from weakpg._src.train import make_train as make_train
from weakpg._src.train import make_train_chunk as make_train_chunk
from weakpg._src.train import make_train_step as make_train_step
from weakpg._src.train import step_size as step_size
