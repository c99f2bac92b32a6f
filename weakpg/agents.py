"""Trained policies that act: ``load`` a run folder into an ``Agent``, then ``agent.act(obs)``."""

from weakpg._src.agent import Agent as Agent
from weakpg._src.agent import policy_action as policy_action
from weakpg._src.app.loading import load as load
